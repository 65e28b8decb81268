"""Private groups as the profile keeps them: each group's membership log (signed changes),
its Megolm sessions (the chat layer's JSON), and the invitations sent and received."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storage.db import Database


@dataclass(frozen=True)
class StoredSession:
    group_id: str
    session_id: str
    owner: str
    state: dict[str, Any]


@dataclass(frozen=True)
class StoredInvite:
    id: str
    group_id: str
    direction: str
    peer: str
    state: str | None
    flow: dict[str, Any]
    updated_at: int


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class GroupRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ---- the membership log --------------------------------------------------------------
    def add_changes(
        self, group_id: str, changes: Iterable[tuple[str, int, bytes]], *, now: int
    ) -> None:
        """(change id, lamport, signed bytes) of changes; one already kept is left as it is."""
        self._db.executemany(
            "INSERT OR IGNORE INTO group_changes (group_id, change_id, lamport, signed, added_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(group_id, cid, lamport, signed, now) for cid, lamport, signed in changes],
        )

    def changes(self, group_id: str) -> list[bytes]:
        rows = self._db.fetchall(
            "SELECT signed FROM group_changes WHERE group_id = ? ORDER BY lamport, change_id",
            (group_id,),
        )
        return [bytes(r[0]) for r in rows]

    def all_changes(self) -> dict[str, list[bytes]]:
        """Every group's log, by group id, in the order the changes came (as far as the
        time they were saved tells)."""
        found: dict[str, list[bytes]] = {}
        for group_id, signed in self._db.fetchall(
            "SELECT group_id, signed FROM group_changes "
            "ORDER BY group_id, added_at, lamport, change_id"
        ):
            found.setdefault(group_id, []).append(bytes(signed))
        return found

    # ---- Megolm sessions -----------------------------------------------------------------
    def save_sessions(
        self,
        group_id: str,
        rows: dict[str, tuple[str, dict[str, Any]]],
        deleted: Iterable[str] = (),
        *,
        now: int,
    ) -> None:
        """Write these sessions' rows ({session id: (owner, state)}) and delete `deleted`."""
        self._db.executemany(
            "INSERT INTO group_sessions (group_id, session_id, owner, state, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (group_id, session_id) DO UPDATE SET "
            "owner = excluded.owner, state = excluded.state, updated_at = excluded.updated_at",
            [(group_id, sid, owner, _json(state), now) for sid, (owner, state) in rows.items()],
        )
        self._db.executemany(
            "DELETE FROM group_sessions WHERE group_id = ? AND session_id = ?",
            [(group_id, sid) for sid in deleted],
        )

    def sessions(self) -> list[StoredSession]:
        rows = self._db.fetchall(
            "SELECT group_id, session_id, owner, state FROM group_sessions "
            "ORDER BY group_id, updated_at"
        )
        return [StoredSession(r[0], r[1], r[2], json.loads(r[3])) for r in rows]


class GroupInviteRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(
        self,
        invite_id: str,
        *,
        group_id: str,
        direction: str,
        peer: str,
        state: str | None,
        flow: dict[str, Any],
        now: int,
    ) -> None:
        self._db.execute(
            "INSERT INTO group_invites (id, group_id, direction, peer, state, flow, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
            "flow = excluded.flow, updated_at = excluded.updated_at",
            (invite_id, group_id, direction, peer, state, _json(flow), now),
        )

    def all(self) -> list[StoredInvite]:
        rows = self._db.fetchall(
            "SELECT id, group_id, direction, peer, state, flow, updated_at FROM group_invites "
            "ORDER BY updated_at DESC"
        )
        return [StoredInvite(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]
