"""Who each outgoing message went to, and who has acknowledged it: k-of-n delivery.

When a message is committed, the conversation's other members at that moment are its
recipients (a 1:1 chat: the contact; a group: every member but us). It is delivered when
every recipient who is still a member has acknowledged it in their SDS traffic; one who left
or was removed after it was sent is not waited for (the evidence names them). Until then
each acknowledgement is a step of its trace ("acknowledged 2/3", and who is missing), and a
re-send names the members it is for.

The recipients and each acknowledgement are rows of the profile (message_recipients), so a
restart keeps the tally; this class holds the pending messages' tallies in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storage.repositories.recipients import Recipient

MAX_NAMED = 20
"""Members named in one trace step (a long list is cut, with the count kept)."""


@dataclass(frozen=True, slots=True)
class Tally:
    recipients: frozenset[str]
    acknowledged: frozenset[str]
    missing: tuple[str, ...]
    """Recipients still members who have not acknowledged it."""
    gone: tuple[str, ...]
    """Recipients no longer members who had not acknowledged it: not waited for."""

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def count(self) -> str:
        return f"{len(self.acknowledged)}/{len(self.recipients)}"

    def evidence(self) -> dict[str, Any]:
        evidence: dict[str, Any] = {"acknowledged": self.count}
        if self.missing:
            evidence["missing"] = list(self.missing[:MAX_NAMED])
        if self.gone:
            evidence["not_waited_for"] = list(self.gone[:MAX_NAMED])
        return evidence


class Receipts:
    def __init__(self) -> None:
        self._recipients: dict[str, frozenset[str]] = {}
        self._acked: dict[str, set[str]] = {}

    def restore(self, message_id: str, recipients: Iterable[Recipient]) -> None:
        rows = list(recipients)
        if rows:
            self._recipients[message_id] = frozenset(r.member for r in rows)
            self._acked[message_id] = {r.member for r in rows if r.acknowledged_at is not None}

    def sent_to(self, message_id: str, members: frozenset[str]) -> None:
        self._recipients[message_id] = members
        self._acked[message_id] = set()

    def forget(self, message_id: str) -> None:
        self._recipients.pop(message_id, None)
        self._acked.pop(message_id, None)

    def knows(self, message_id: str) -> bool:
        return message_id in self._recipients

    def acknowledge(self, message_id: str, member: str, members: frozenset[str]) -> Tally | None:
        """Count a member's acknowledgement; None when it does not count (not a recipient,
        or counted before). A message kept from before recipients were recorded counts the
        conversation's members now."""
        recipients = self._recipients.setdefault(message_id, members)
        acked = self._acked.setdefault(message_id, set())
        if member not in recipients or member in acked:
            return None
        acked.add(member)
        return self.tally(message_id, members)

    def tally(self, message_id: str, members: frozenset[str]) -> Tally:
        recipients = self._recipients.get(message_id, frozenset())
        acked = frozenset(self._acked.get(message_id, set()))
        waiting = sorted(recipients - acked)
        return Tally(
            recipients,
            acked,
            tuple(m for m in waiting if m in members),
            tuple(m for m in waiting if m not in members),
        )
