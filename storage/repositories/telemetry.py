"""The local telemetry queue: events wait here until a batch leaves."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from storage.db import Database

MAX_EVENT_BYTES = 8 * 1024


@dataclass(frozen=True)
class TelemetryEvent:
    id: int
    kind: str
    payload: dict[str, Any]
    created_at: int
    attempts: int


class TelemetryQueueRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def push(self, kind: str, payload: Mapping[str, Any], *, now: int) -> int:
        text = json.dumps(dict(payload), sort_keys=True, separators=(",", ":"))
        if len(text.encode("utf-8")) > MAX_EVENT_BYTES:
            raise ValueError(f"a telemetry event is limited to {MAX_EVENT_BYTES} bytes")
        return self._db.execute(
            "INSERT INTO telemetry_queue (kind, payload, created_at) VALUES (?, ?, ?)",
            (kind, text, now),
        )

    def batch(self, limit: int = 100) -> list[TelemetryEvent]:
        rows = self._db.fetchall(
            "SELECT id, kind, payload, created_at, attempts FROM telemetry_queue "
            "ORDER BY id LIMIT ?",
            (limit,),
        )
        return [TelemetryEvent(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def acknowledge(self, ids: list[int]) -> None:
        self._db.executemany("DELETE FROM telemetry_queue WHERE id = ?", [(i,) for i in ids])

    def record_failure(self, ids: list[int]) -> None:
        self._db.executemany(
            "UPDATE telemetry_queue SET attempts = attempts + 1 WHERE id = ?", [(i,) for i in ids]
        )

    def size(self) -> int:
        return int(self._db.scalar("SELECT count(*) FROM telemetry_queue"))
