"""Telemetry's local outbox, state and sent log (migration 0008; chat/telemetry decides what
goes in and when it leaves, this only stores it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Database

SENT_LOG_KEPT = 50
"""Batches kept in the sent log for the "what we send" view."""


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    seq: int
    id: str
    type: str
    t: int
    body: str
    bytes: int


@dataclass(frozen=True, slots=True)
class SentBatch:
    batch_id: str
    sent_at: int
    status: str
    """`sent`, `dry_run`, or the failure (`http_429`, `network`...)."""
    events: int
    accepted: int
    duplicate: int
    rejected: int
    bytes: int
    body: str


class TelemetryOutboxRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- state -----------------------------------------------------------------------------
    def state(self) -> dict[str, str]:
        return {
            str(k): str(v) for k, v in self._db.fetchall("SELECT key, value FROM telemetry_state")
        }

    def set_state(self, values: dict[str, str | None]) -> None:
        """Set (or, for None, forget) some keys in one transaction."""
        with self._db.transaction():
            for key, value in values.items():
                if value is None:
                    self._db.execute("DELETE FROM telemetry_state WHERE key = ?", (key,))
                else:
                    self._db.execute(
                        "INSERT INTO telemetry_state (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, value),
                    )

    # -- outbox ----------------------------------------------------------------------------
    def append(self, events: Sequence[QueuedEvent], state: dict[str, str | None]) -> None:
        """Events and the state they move (next seq, drops) in one transaction."""
        with self._db.transaction():
            self._db.executemany(
                "INSERT INTO telemetry_outbox (seq, id, type, t, body, bytes) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(e.seq, e.id, e.type, e.t, e.body, e.bytes) for e in events],
            )
            self._count(len(events), sum(e.bytes for e in events))
            self.set_state(state)

    def _count(self, events: int, size: int) -> None:
        """The running totals, so the caps need not count the table at every flush."""
        for key, delta in (("queued", events), ("queued_bytes", size)):
            self._db.execute(
                "INSERT INTO telemetry_state (key, value) VALUES (?, ?) ON CONFLICT (key) "
                "DO UPDATE SET value = CAST(CAST(value AS INTEGER) + ? AS TEXT)",
                (key, str(max(0, delta)), delta),
            )

    def oldest(self, limit: int) -> list[QueuedEvent]:
        rows = self._db.fetchall(
            "SELECT seq, id, type, t, body, bytes FROM telemetry_outbox ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [QueuedEvent(*row) for row in rows]

    def sizes(
        self, limit: int, after_seq: int = -1, *, keep: Sequence[str] = ()
    ) -> list[tuple[int, str, int]]:
        """(seq, type, bytes) of the oldest events after `after_seq`, not of the types in
        `keep`: what the caps purge."""
        marks = ",".join("?" * len(keep))
        rows = self._db.fetchall(
            f"SELECT seq, type, bytes FROM telemetry_outbox WHERE seq > ? "
            f"AND type NOT IN ({marks}) ORDER BY seq LIMIT ?",
            (after_seq, *keep, limit),
        )
        return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]

    def sizes_before(self, t: int) -> list[tuple[int, str, int]]:
        """(seq, type, bytes) of the events that happened before `t`."""
        rows = self._db.fetchall(
            "SELECT seq, type, bytes FROM telemetry_outbox WHERE t < ? ORDER BY seq", (t,)
        )
        return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]

    def totals(self) -> tuple[int, int, int | None]:
        """Events, bytes, and the first queued event's `t` (None when empty)."""
        state = self.state()
        oldest = self._db.scalar("SELECT t FROM telemetry_outbox ORDER BY seq LIMIT 1")
        return (
            int(state.get("queued", "0")),
            int(state.get("queued_bytes", "0")),
            None if oldest is None else int(oldest),
        )

    def counts_by_type(self) -> dict[str, int]:
        rows = self._db.fetchall("SELECT type, count(*) FROM telemetry_outbox GROUP BY type")
        return {str(kind): int(n) for kind, n in rows}

    def delete(self, seqs: Sequence[int]) -> None:
        with self._db.transaction():
            removed = size = 0
            for start in range(0, len(seqs), 500):
                chunk = list(seqs[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.fetchall(
                    f"DELETE FROM telemetry_outbox WHERE seq IN ({marks}) RETURNING bytes", chunk
                )
                removed += len(rows)
                size += sum(int(r[0]) for r in rows)
            self._count(-removed, -size)

    def delete_with_state(self, seqs: Sequence[int], state: dict[str, str | None]) -> None:
        with self._db.transaction():
            self.delete(seqs)
            self.set_state(state)

    def clear(self) -> None:
        """Opting out: the queue and the sent log go (the state is the caller's)."""
        with self._db.transaction():
            self._db.execute("DELETE FROM telemetry_outbox")
            self._db.execute("DELETE FROM telemetry_sent")
            self.set_state({"queued": None, "queued_bytes": None})

    # -- sent log --------------------------------------------------------------------------
    def log_sent(self, batch: SentBatch) -> None:
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO telemetry_sent (batch_id, sent_at, status, events, accepted, "
                "duplicate, rejected, bytes, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    batch.batch_id,
                    batch.sent_at,
                    batch.status,
                    batch.events,
                    batch.accepted,
                    batch.duplicate,
                    batch.rejected,
                    batch.bytes,
                    batch.body,
                ),
            )
            self._db.execute(
                "DELETE FROM telemetry_sent WHERE id NOT IN "
                "(SELECT id FROM telemetry_sent ORDER BY id DESC LIMIT ?)",
                (SENT_LOG_KEPT,),
            )

    def sent(self, limit: int = SENT_LOG_KEPT) -> list[SentBatch]:
        rows = self._db.fetchall(
            "SELECT batch_id, sent_at, status, events, accepted, duplicate, rejected, bytes, "
            "body FROM telemetry_sent ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [SentBatch(*row) for row in rows]
