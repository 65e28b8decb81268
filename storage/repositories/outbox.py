"""The outbox: what must still go out, committed before anything touches the wire."""

from __future__ import annotations

from dataclasses import dataclass

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


_COLUMNS = "message, pubsub_topic, content_topic, payload, attempts, next_attempt_at, created_at"


class OutboxRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue(
        self, message: int, *, pubsub_topic: str, content_topic: str, payload: bytes, now: int
    ) -> None:
        self._db.execute(
            f"INSERT INTO outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, 0, ?, ?)",
            (message, pubsub_topic, content_topic, payload, now, now),
        )

    def due(self, now: int, limit: int = 100) -> list[OutboxEntry]:
        rows = self._db.fetchall(
            f"SELECT {_COLUMNS} FROM outbox WHERE next_attempt_at <= ? "
            "ORDER BY next_attempt_at, message LIMIT ?",
            (now, limit),
        )
        return [OutboxEntry(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]

    def all(self) -> list[OutboxEntry]:
        rows = self._db.fetchall(f"SELECT {_COLUMNS} FROM outbox ORDER BY created_at, message")
        return [OutboxEntry(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]

    def record_attempt(self, message: int, *, next_attempt_at: int) -> None:
        self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE message = ?",
            (next_attempt_at, message),
        )

    def remove(self, message: int) -> None:
        self._db.execute("DELETE FROM outbox WHERE message = ?", (message,))
