"""Communities we own or joined, their content and shard keys per epoch, the owner key of
those we own, and the join requests sent and received."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage.db import Database


@dataclass(frozen=True)
class Community:
    id: str
    name: str
    owner_key: str
    description: bytes
    """The owner-signed description, as received."""
    shard: int | None
    role: str
    joined_at: int


@dataclass(frozen=True)
class CommunityKey:
    kind: str
    epoch: int
    key: bytes
    created_at: int


@dataclass(frozen=True)
class StoredRequest:
    id: str
    community_id: str
    direction: str
    requester: str
    state: str | None
    flow: dict[str, Any]
    updated_at: int
    link: str = ""
    """Ours: the community link we sent it for (a restart resumes its fetch)."""
    description: bytes | None = None
    """Ours: the newest signed description it goes by (its moderators' links)."""


_COLUMNS = "id, name, owner_key, description, shard, role, joined_at"


class CommunityRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def upsert(self, c: Community) -> None:
        self._db.execute(
            f"INSERT INTO communities ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
            "description = excluded.description, shard = excluded.shard, role = excluded.role",
            (c.id, c.name, c.owner_key, c.description, c.shard, c.role, c.joined_at),
        )

    def get(self, community_id: str) -> Community | None:
        row = self._db.fetchone(f"SELECT {_COLUMNS} FROM communities WHERE id = ?", (community_id,))
        if row is None:
            return None
        return Community(row[0], row[1], row[2], bytes(row[3]), row[4], row[5], row[6])

    def all(self) -> list[Community]:
        rows = self._db.fetchall(f"SELECT {_COLUMNS} FROM communities ORDER BY name")
        return [Community(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]

    def remove(self, community_id: str) -> None:
        self._db.execute("DELETE FROM communities WHERE id = ?", (community_id,))

    def add_key(self, community_id: str, key: CommunityKey) -> None:
        self._db.execute(
            "INSERT INTO community_keys (community_id, kind, epoch, key, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (community_id, key.kind, key.epoch, key.key, key.created_at),
        )

    def current_key(self, community_id: str, kind: str) -> CommunityKey | None:
        row = self._db.fetchone(
            "SELECT kind, epoch, key, created_at FROM community_keys "
            "WHERE community_id = ? AND kind = ? ORDER BY epoch DESC LIMIT 1",
            (community_id, kind),
        )
        return None if row is None else CommunityKey(row[0], row[1], bytes(row[2]), row[3])

    def keys(self, community_id: str) -> list[CommunityKey]:
        rows = self._db.fetchall(
            "SELECT kind, epoch, key, created_at FROM community_keys WHERE community_id = ? "
            "ORDER BY kind, epoch",
            (community_id,),
        )
        return [CommunityKey(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    # ---- the owner key of the communities we own ------------------------------------------
    def set_owner_seed(self, community_id: str, seed: bytes, *, now: int) -> None:
        self._db.execute(
            "INSERT INTO community_owner_keys (community_id, seed, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (community_id) DO UPDATE SET seed = excluded.seed",
            (community_id, seed, now),
        )

    def owner_seed(self, community_id: str) -> bytes | None:
        row = self._db.fetchone(
            "SELECT seed FROM community_owner_keys WHERE community_id = ?", (community_id,)
        )
        return None if row is None else bytes(row[0])

    # ---- join requests ---------------------------------------------------------------------
    def save_request(self, request: StoredRequest) -> None:
        self._db.execute(
            "INSERT INTO community_requests "
            "(id, community_id, direction, requester, state, flow, updated_at, link, description) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "state = excluded.state, flow = excluded.flow, updated_at = excluded.updated_at, "
            "link = excluded.link, description = excluded.description",
            (
                request.id,
                request.community_id,
                request.direction,
                request.requester,
                request.state,
                json.dumps(request.flow, separators=(",", ":")),
                request.updated_at,
                request.link,
                request.description,
            ),
        )

    def requests(self) -> list[StoredRequest]:
        rows = self._db.fetchall(
            "SELECT id, community_id, direction, requester, state, flow, updated_at, link, "
            "description FROM community_requests ORDER BY updated_at, id"
        )
        return [
            StoredRequest(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                json.loads(r[5]),
                r[6],
                r[7],
                None if r[8] is None else bytes(r[8]),
            )
            for r in rows
        ]
