"""Messenger state kept as the chat layer's own JSON: contact request flows, Olm sessions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage.db import Database


@dataclass(frozen=True)
class StoredFlow:
    chat_key: str
    state: str | None
    flow: dict[str, Any]
    their_link: str | None
    updated_at: int


class ContactFlowRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(
        self,
        chat_key: str,
        *,
        state: str | None,
        flow: dict[str, Any],
        their_link: str | None,
        now: int,
    ) -> None:
        self._db.execute(
            "INSERT INTO contact_flows (chat_key, state, flow, their_link, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (chat_key) DO UPDATE SET state = excluded.state, "
            "flow = excluded.flow, their_link = coalesce(excluded.their_link, their_link), "
            "updated_at = excluded.updated_at",
            (chat_key, state, json.dumps(flow, separators=(",", ":")), their_link, now),
        )

    def get(self, chat_key: str) -> StoredFlow | None:
        row = self._db.fetchone(
            "SELECT chat_key, state, flow, their_link, updated_at FROM contact_flows "
            "WHERE chat_key = ?",
            (chat_key,),
        )
        return (
            None if row is None else StoredFlow(row[0], row[1], json.loads(row[2]), row[3], row[4])
        )

    def all(self) -> list[StoredFlow]:
        rows = self._db.fetchall(
            "SELECT chat_key, state, flow, their_link, updated_at FROM contact_flows "
            "ORDER BY updated_at DESC"
        )
        return [StoredFlow(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]


class OlmSessionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, sessions: dict[str, Any], *, now: int) -> None:
        self._db.execute(
            "INSERT INTO olm_sessions (id, sessions, updated_at) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET sessions = excluded.sessions, "
            "updated_at = excluded.updated_at",
            (json.dumps(sessions, separators=(",", ":")), now),
        )

    def load(self) -> dict[str, Any] | None:
        text = self._db.scalar("SELECT sessions FROM olm_sessions WHERE id = 1")
        return None if text is None else dict(json.loads(text))
