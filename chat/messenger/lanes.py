"""Receive prioritisation: contacts' messages before the strangers' backlog.

The node hands over received messages in arrival order. Were they handled in that order, a
contact's message arriving behind a thousand contact requests would wait for all of them.
So the receive loop sorts each message by a cheap look before anything is decrypted (its
content topic; on the contact-request partition, whether the envelope names someone we
chose) into one of two lanes, and always takes from the contacts' lane first:

- contacts: our conversations' topics, and answers from people we asked. In arrival order;
  bounded only as a last resort (the node's inbox is bounded before it).
- strangers: everything else on our request partition. Bounded: when full, the oldest
  waiting message is shed, unopened, and counted (its sender's client sends it again).

Sans-IO: `put` and `take` only; receive.py's loop moves the messages.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

CONTACTS_LANE = 4096
"""Messages of contacts waiting (the node's inbox holds as many)."""


class Lanes(Generic[T]):
    def __init__(self, strangers: int, contacts: int = CONTACTS_LANE) -> None:
        self._contacts: deque[T] = deque()
        self._strangers: deque[T] = deque()
        self._limits = (contacts, strangers)
        self.shed_contacts = 0
        """Contacts' messages shed (never expected: the store scans find them again)."""

    def put(self, item: T, *, urgent: bool) -> T | None:
        """Queue an item; returns the one shed to make room (the oldest of its lane), if any."""
        lane = self._contacts if urgent else self._strangers
        limit = self._limits[0] if urgent else self._limits[1]
        lane.append(item)
        if len(lane) <= limit:
            return None
        if urgent:
            self.shed_contacts += 1
        return lane.popleft()

    def take(self) -> tuple[T, bool] | None:
        """The next item (contacts first) and whether it came from the contacts' lane."""
        if self._contacts:
            return self._contacts.popleft(), True
        if self._strangers:
            return self._strangers.popleft(), False
        return None

    def waiting(self) -> tuple[int, int]:
        """(contacts', strangers') items waiting."""
        return len(self._contacts), len(self._strangers)
