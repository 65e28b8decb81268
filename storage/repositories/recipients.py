"""Who each outgoing message was sent to, and when each of them acknowledged it: the
k-of-n delivery of a group message ("delivered 3/5", and who is missing), kept across
restarts. A 1:1 message has its one recipient here too."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from storage.db import Database

MAX_ROWIDS_PER_QUERY = 500
"""Messages looked up in one statement (a page holds at most 500)."""


@dataclass(frozen=True)
class Recipient:
    member: str
    acknowledged_at: int | None


class RecipientRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, message: int, members: Iterable[str]) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO message_recipients (message, member) VALUES (?, ?)",
            [(message, member) for member in members],
        )

    def acknowledge(self, message: int, member: str, *, at: int) -> bool:
        """Record the member's acknowledgement (the first one counts); False if they are not
        a recipient of the message or acknowledged it before."""
        cursor_rows = self._db.fetchone(
            "SELECT acknowledged_at FROM message_recipients WHERE message = ? AND member = ?",
            (message, member),
        )
        if cursor_rows is None or cursor_rows[0] is not None:
            return False
        self._db.execute(
            "UPDATE message_recipients SET acknowledged_at = ? WHERE message = ? AND member = ?",
            (at, message, member),
        )
        return True

    def of(self, messages: Sequence[int]) -> dict[int, list[Recipient]]:
        """The recipients of these messages (row ids), in the order they were added."""
        found: dict[int, list[Recipient]] = {}
        for start in range(0, len(messages), MAX_ROWIDS_PER_QUERY):
            chunk = list(messages[start : start + MAX_ROWIDS_PER_QUERY])
            marks = ",".join("?" * len(chunk))
            for message, member, at in self._db.fetchall(
                "SELECT message, member, acknowledged_at FROM message_recipients "
                f"WHERE message IN ({marks}) ORDER BY message, member",
                chunk,
            ):
                found.setdefault(message, []).append(Recipient(member, at))
        return found
