"""The outbox: what must still go out, committed before anything touches the wire."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from storage.db import Database


@dataclass(frozen=True)
class OutboxEntry:
    message: int
    pubsub_topic: str
    content_topic: str
    payload: bytes
    attempts: int
    next_attempt_at: int
    created_at: int
    entry: dict[str, Any] = field(default_factory=dict)
    """The outbox state machine's own bookkeeping (chat/reliability/outbox.py)."""


_COLUMNS = (
    "message, pubsub_topic, content_topic, payload, attempts, next_attempt_at, created_at, entry"
)


def _entry(r: Any) -> OutboxEntry:
    return OutboxEntry(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6], json.loads(r[7]))


class OutboxRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue(
        self,
        message: int,
        *,
        pubsub_topic: str,
        content_topic: str,
        payload: bytes,
        now: int,
        entry: dict[str, Any] | None = None,
    ) -> None:
        self._db.execute(
            f"INSERT INTO outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
            (message, pubsub_topic, content_topic, payload, now, now, _json(entry or {})),
        )

    def save_entry(
        self, message: int, entry: dict[str, Any], *, attempts: int, next_attempt_at: int
    ) -> None:
        """Record the state machine's bookkeeping after a transition or an attempt."""
        self._db.execute(
            "UPDATE outbox SET entry = ?, attempts = ?, next_attempt_at = ? WHERE message = ?",
            (_json(entry), attempts, next_attempt_at, message),
        )

    def due(self, now: int, limit: int = 100) -> list[OutboxEntry]:
        rows = self._db.fetchall(
            f"SELECT {_COLUMNS} FROM outbox WHERE next_attempt_at <= ? "
            "ORDER BY next_attempt_at, message LIMIT ?",
            (now, limit),
        )
        return [_entry(r) for r in rows]

    def all(self) -> list[OutboxEntry]:
        rows = self._db.fetchall(f"SELECT {_COLUMNS} FROM outbox ORDER BY created_at, message")
        return [_entry(r) for r in rows]

    def get(self, message: int) -> OutboxEntry | None:
        row = self._db.fetchone(f"SELECT {_COLUMNS} FROM outbox WHERE message = ?", (message,))
        return None if row is None else _entry(row)

    def record_attempt(self, message: int, *, next_attempt_at: int) -> None:
        self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE message = ?",
            (next_attempt_at, message),
        )

    def remove(self, message: int) -> None:
        self._db.execute("DELETE FROM outbox WHERE message = ?", (message,))


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)
