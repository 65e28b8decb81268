"""Messenger state kept as the chat layer's own JSON: contact request flows, Olm sessions."""

from __future__ import annotations

import json
from collections.abc import Iterable
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

    def delete(self, chat_keys: Iterable[str]) -> None:
        """Forget the flows with these people (requests dropped as spam)."""
        self._db.executemany(
            "DELETE FROM contact_flows WHERE chat_key = ?", [(key,) for key in chat_keys]
        )

    def all(self) -> list[StoredFlow]:
        rows = self._db.fetchall(
            "SELECT chat_key, state, flow, their_link, updated_at FROM contact_flows "
            "ORDER BY updated_at DESC"
        )
        return [StoredFlow(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]


class OlmSessionRepository:
    """The Olm sessions, one row per peer identity key (hex), each the chat layer's JSON.

    Profiles from before migration 4 kept every session in one row of `olm_sessions`
    (`legacy()`); the messenger moves it to per-peer rows on its first save, and deletes it
    in the same transaction (`delete_legacy`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def save(
        self, rows: dict[str, dict[str, Any]], deleted: Iterable[str] = (), *, now: int
    ) -> None:
        """Write these peers' rows and delete those of `deleted` (call in a transaction)."""
        self._db.executemany(
            "INSERT INTO olm_peer_sessions (identity_key, state, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (identity_key) DO UPDATE SET state = excluded.state, "
            "updated_at = excluded.updated_at",
            [(key, json.dumps(row, separators=(",", ":")), now) for key, row in rows.items()],
        )
        self._db.executemany(
            "DELETE FROM olm_peer_sessions WHERE identity_key = ?", [(key,) for key in deleted]
        )

    def load(self) -> dict[str, dict[str, Any]]:
        rows = self._db.fetchall("SELECT identity_key, state FROM olm_peer_sessions")
        return {str(key): dict(json.loads(state)) for key, state in rows}

    def legacy(self) -> dict[str, Any] | None:
        """The whole-structure row of earlier versions, if it is still there."""
        text = self._db.scalar("SELECT sessions FROM olm_sessions WHERE id = 1")
        return None if text is None else dict(json.loads(text))

    def delete_legacy(self) -> None:
        self._db.execute("DELETE FROM olm_sessions")
