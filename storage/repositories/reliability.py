"""Reliability state: SDS channels, per-topic sync cursors and the received-hash cache."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from storage.db import Database


@dataclass(frozen=True)
class SdsChannelState:
    channel_id: str
    lamport: int
    state: bytes
    """The SDS core's own serialisation (history, buffers, bloom filter)."""
    updated_at: int


@dataclass(frozen=True)
class SyncCursor:
    pubsub_topic: str
    content_topic: str
    synced_until: int
    store_cursor: bytes | None
    updated_at: int


class SdsChannelRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, channel: SdsChannelState) -> None:
        self._db.execute(
            "INSERT INTO sds_channels (channel_id, lamport, state, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (channel_id) DO UPDATE SET lamport = excluded.lamport, "
            "state = excluded.state, updated_at = excluded.updated_at",
            (channel.channel_id, channel.lamport, channel.state, channel.updated_at),
        )

    def load(self, channel_id: str) -> SdsChannelState | None:
        row = self._db.fetchone(
            "SELECT channel_id, lamport, state, updated_at FROM sds_channels WHERE channel_id = ?",
            (channel_id,),
        )
        return None if row is None else SdsChannelState(row[0], row[1], bytes(row[2]), row[3])


class SyncCursorRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, cursor: SyncCursor) -> None:
        c = cursor
        self._db.execute(
            "INSERT INTO sync_cursors (pubsub_topic, content_topic, synced_until, store_cursor, "
            "updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (pubsub_topic, content_topic) DO "
            "UPDATE SET synced_until = excluded.synced_until, "
            "store_cursor = excluded.store_cursor, updated_at = excluded.updated_at",
            (c.pubsub_topic, c.content_topic, c.synced_until, c.store_cursor, c.updated_at),
        )

    def load(self, pubsub_topic: str, content_topic: str) -> SyncCursor | None:
        row = self._db.fetchone(
            "SELECT pubsub_topic, content_topic, synced_until, store_cursor, updated_at "
            "FROM sync_cursors WHERE pubsub_topic = ? AND content_topic = ?",
            (pubsub_topic, content_topic),
        )
        if row is None:
            return None
        return SyncCursor(row[0], row[1], row[2], row[3] and bytes(row[3]), row[4])


class ReceivedHashRepository:
    """Waku hashes already processed, so duplicates from relay, store and filter are dropped."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, hashes: Iterable[bytes], *, expires_at: int) -> None:
        self._db.executemany(
            "INSERT INTO received_hashes (hash, expires_at) VALUES (?, ?) "
            "ON CONFLICT (hash) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
            [(h, expires_at) for h in hashes],
        )

    def seen(self, message_hash: bytes, *, now: int) -> bool:
        return (
            self._db.fetchone(
                "SELECT 1 FROM received_hashes WHERE hash = ? AND expires_at > ?",
                (message_hash, now),
            )
            is not None
        )

    def live(self, *, now: int, limit: int) -> list[bytes]:
        """Unexpired hashes, those kept longest first, at most `limit` of them."""
        rows = self._db.fetchall(
            "SELECT hash FROM received_hashes WHERE expires_at > ? "
            "ORDER BY expires_at DESC LIMIT ?",
            (now, limit),
        )
        return [bytes(row[0]) for row in rows]

    def expire(self, *, now: int) -> int:
        """Drop entries whose time is up; returns how many."""
        return self._db.execute_count("DELETE FROM received_hashes WHERE expires_at <= ?", (now,))
