"""SQLite archive backend (stdlib sqlite3; the archive is public data, so not encrypted).

Layout: topic names live once in `topics`; `messages` refers to them by id, which keeps the
indexes small. Every query form has an index that walks (timestamp, hash) in order:

- no topic filter, and retention by age or count: `messages_time (timestamp, hash)`
- pubsub topic (with or without content topics): `messages_pubsub_time (pubsub_id,
  timestamp, hash, content_id)` — the content id rides along so filtering needs no row lookup
- content topics without a pubsub topic, or very sparse topics: `messages_content_time`
- hash lookups: the unique index on `hash`

The byte cap is enforced with `PRAGMA max_page_count`, so the file cannot grow past it;
a write that does not fit evicts the oldest messages and retries (see `insert`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from storage.archive.base import (
    Archive,
    ArchiveError,
    ArchiveFull,
    ArchiveQuery,
    ArchiveRecord,
    ArchiveRow,
    ArchiveUnavailable,
    CursorNotFound,
    RetentionPolicy,
)

PAGE_SIZE = 4096
# Share of the stored messages evicted per attempt when a write does not fit under the cap.
EVICTION_STEPS = (0.05, 0.25, 1.0)
# Retention by bytes brings usage back under this share of the cap, leaving room to write.
BYTES_LOW_WATER = 0.9

SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    pubsub_id INTEGER NOT NULL,
    content_id INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    message BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_time ON messages (timestamp, hash);
CREATE INDEX IF NOT EXISTS messages_pubsub_time
    ON messages (pubsub_id, timestamp, hash, content_id);
CREATE INDEX IF NOT EXISTS messages_content_time ON messages (content_id, timestamp, hash);
"""


def page_select(
    q: ArchiveQuery,
    *,
    columns: str,
    cursor_timestamp: int | None = None,
    pubsub: tuple[str, Any] | None = None,
    content: tuple[str, Sequence[Any]] | None = None,
) -> tuple[str, list[Any]]:
    """The SELECT and its parameters for one page of `q` from a `messages` table with `hash`
    and `timestamp` columns, walking (timestamp, hash) in the query's direction.

    The caller resolves what depends on its layout: the cursor's timestamp (when `q.cursor`
    is set), and the topics as (column, value) and (column, values), which are ids here and
    plain names in the store benchmark's naive comparison table."""
    where: list[str] = []
    params: list[Any] = []
    if q.cursor is not None:
        where.append(f"(timestamp, hash) {'>' if q.forward else '<'} (?, ?)")
        params += [cursor_timestamp, q.cursor]
    if pubsub is not None:
        where.append(f"{pubsub[0]} = ?")
        params.append(pubsub[1])
    if content is not None:
        where.append(f"{content[0]} IN ({', '.join('?' * len(content[1]))})")
        params += list(content[1])
    if q.time_start is not None:
        where.append("timestamp >= ?")
        params.append(q.time_start)
    if q.time_end is not None:
        where.append("timestamp <= ?")
        params.append(q.time_end)
    if q.message_hashes:
        where.append(f"hash IN ({', '.join('?' * len(q.message_hashes))})")
        params += list(q.message_hashes)
    order = "ASC" if q.forward else "DESC"
    sql = f"SELECT {columns} FROM messages"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY timestamp {order}, hash {order} LIMIT ?"
    params.append(q.limit)
    return sql, params


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


class SqliteArchive(Archive):
    def __init__(self, path: str | Path, retention: RetentionPolicy | None = None) -> None:
        self.path = str(path)
        self.retention = retention or RetentionPolicy()
        self._lock = threading.Lock()
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None
            )
            db = self._db
            db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            # Freed pages are reused; incremental vacuum can hand them back to the OS.
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA journal_size_limit = 4194304")
            db.executescript(SCHEMA)
            self._page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
            if self.retention.max_bytes is not None:
                pages = max(1, self.retention.max_bytes // self._page_size)
                db.execute(f"PRAGMA max_page_count = {pages}")
            db.execute("PRAGMA optimize = 0x10002")
            self._count = int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
        except sqlite3.Error as exc:
            raise ArchiveUnavailable(f"cannot open archive {self.path}: {exc}") from exc
        self._topic_ids: dict[str, int] = {}
        self._topic_names: dict[int, str] = {}

    # -- plumbing ---------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ArchiveUnavailable("archive is closed")
        return self._db

    def _load_topic(self, db: sqlite3.Connection, name: str, *, create: bool) -> int | None:
        cached = self._topic_ids.get(name)
        if cached is not None:
            return cached
        if create:
            db.execute("INSERT OR IGNORE INTO topics (name) VALUES (?)", (name,))
        row = db.execute("SELECT id FROM topics WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        topic_id = int(row[0])
        self._topic_ids[name] = topic_id
        self._topic_names[topic_id] = name
        return topic_id

    def _topic_name(self, db: sqlite3.Connection, topic_id: int) -> str:
        name = self._topic_names.get(topic_id)
        if name is None:
            name = str(
                db.execute("SELECT name FROM topics WHERE id = ?", (topic_id,)).fetchone()[0]
            )
            self._topic_names[topic_id] = name
            self._topic_ids[name] = topic_id
        return name

    def _forget_topic_cache(self) -> None:
        # After a rollback a cached id may name a row that was never committed.
        self._topic_ids.clear()
        self._topic_names.clear()

    # -- writes -----------------------------------------------------------------------------

    def _insert_rows(self, db: sqlite3.Connection, records: Iterable[ArchiveRecord]) -> int:
        added = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for rec in records:
                pubsub_id = self._load_topic(db, rec.pubsub_topic, create=True)
                content_id = self._load_topic(db, rec.content_topic, create=True)
                cur = db.execute(
                    "INSERT OR IGNORE INTO messages"
                    " (hash, pubsub_id, content_id, timestamp, message) VALUES (?, ?, ?, ?, ?)",
                    (rec.message_hash, pubsub_id, content_id, rec.timestamp, rec.message),
                )
                added += cur.rowcount
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._forget_topic_cache()
            raise
        self._count += added
        return added

    def _write(self, records: Sequence[ArchiveRecord]) -> int:
        with self._lock:
            db = self._conn()
            try:
                return self._insert_rows(db, records)
            except sqlite3.Error as exc:
                if not _is_full(exc):
                    raise ArchiveError(f"archive write failed: {exc}") from exc
                full = exc
            # Only a configured byte cap licenses evicting old messages to make room, and
            # only for writes that can fit beside other messages at all.
            cap = self.retention.max_bytes
            if cap is not None and sum(len(r.message) for r in records) <= cap // 4:
                for share in EVICTION_STEPS:
                    if self._count == 0:
                        break
                    self._delete_oldest(db, max(1, int(self._count * share)))
                    try:
                        return self._insert_rows(db, records)
                    except sqlite3.Error as exc:
                        if not _is_full(exc):
                            raise ArchiveError(f"archive write failed: {exc}") from exc
                        full = exc
            raise ArchiveFull(f"archive is full: {full}") from full

    def insert(self, record: ArchiveRecord) -> bool:
        return self._write([record]) == 1

    def insert_many(self, records: Sequence[ArchiveRecord]) -> int:
        """Store many messages in one transaction (bulk loads); returns how many were new."""
        return self._write(records)

    # -- reads ------------------------------------------------------------------------------

    def query(self, query: ArchiveQuery) -> list[ArchiveRow]:
        with self._lock:
            db = self._conn()
            try:
                return self._query(db, query)
            except sqlite3.Error as exc:
                raise ArchiveError(f"archive query failed: {exc}") from exc

    def _query(self, db: sqlite3.Connection, q: ArchiveQuery) -> list[ArchiveRow]:
        statement = self._select(db, q)
        if statement is None:
            return []
        cursor = db.execute(*statement)
        if not q.include_data:
            return [ArchiveRow(message_hash=r[0], timestamp=r[1]) for r in cursor.fetchall()]
        # Row by row, so that a page of large messages never holds more than its budget.
        rows: list[ArchiveRow] = []
        budget = q.max_bytes
        for message_hash, timestamp, pubsub_id, message in cursor:
            if budget is not None and rows and len(message) > budget:
                rows.append(ArchiveRow(message_hash, timestamp, beyond_budget=True))
                break
            if budget is not None:
                budget -= len(message)
            rows.append(
                ArchiveRow(message_hash, timestamp, self._topic_name(db, pubsub_id), message)
            )
        cursor.close()
        return rows

    def _select(self, db: sqlite3.Connection, q: ArchiveQuery) -> tuple[str, list[Any]] | None:
        """The SELECT for one page, or None when nothing can match (unknown topic, limit 0)."""
        if q.limit <= 0:
            return None
        cursor_timestamp = None
        if q.cursor is not None:
            row = db.execute(
                "SELECT timestamp FROM messages WHERE hash = ?", (q.cursor,)
            ).fetchone()
            if row is None:
                raise CursorNotFound()
            cursor_timestamp = int(row[0])
        pubsub: tuple[str, int] | None = None
        if q.pubsub_topic is not None:
            pubsub_id = self._load_topic(db, q.pubsub_topic, create=False)
            if pubsub_id is None:
                return None
            pubsub = ("pubsub_id", pubsub_id)
        content: tuple[str, list[int]] | None = None
        if q.content_topics:
            ids = [self._load_topic(db, t, create=False) for t in q.content_topics]
            known = sorted({i for i in ids if i is not None})
            if not known:
                return None
            content = ("content_id", known)
        columns = "hash, timestamp, pubsub_id, message" if q.include_data else "hash, timestamp"
        return page_select(
            q, columns=columns, cursor_timestamp=cursor_timestamp, pubsub=pubsub, content=content
        )

    def explain(self, query: ArchiveQuery) -> list[str]:
        """SQLite's query plan for the page `query` asks for (for tests and tuning)."""
        with self._lock:
            db = self._conn()
            statement = self._select(db, query)
            if statement is None:
                return []
            sql, params = statement
            return [str(r[3]) for r in db.execute("EXPLAIN QUERY PLAN " + sql, params)]

    def present(self, message_hashes: Sequence[bytes]) -> set[bytes]:
        if not message_hashes:
            return set()
        with self._lock:
            db = self._conn()
            found: set[bytes] = set()
            # Stay far below SQLite's bound-parameter limit.
            for start in range(0, len(message_hashes), 500):
                chunk = list(message_hashes[start : start + 500])
                marks = ", ".join("?" * len(chunk))
                sql = f"SELECT hash FROM messages WHERE hash IN ({marks})"
                found.update(bytes(r[0]) for r in db.execute(sql, chunk))
            return found

    # -- retention and size -----------------------------------------------------------------

    def _delete_oldest(self, db: sqlite3.Connection, n: int) -> int:
        cur = db.execute(
            "DELETE FROM messages WHERE id IN"
            " (SELECT id FROM messages ORDER BY timestamp, hash LIMIT ?)",
            (n,),
        )
        self._count -= cur.rowcount
        return cur.rowcount

    def _used_bytes(self, db: sqlite3.Connection) -> int:
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * self._page_size

    def apply_retention(self, now_ns: int) -> int:
        policy = self.retention
        deleted = 0
        with self._lock:
            db = self._conn()
            try:
                if policy.max_age_ns is not None:
                    cur = db.execute(
                        "DELETE FROM messages WHERE timestamp < ?", (now_ns - policy.max_age_ns,)
                    )
                    self._count -= cur.rowcount
                    deleted += cur.rowcount
                if policy.max_messages is not None and self._count > policy.max_messages:
                    deleted += self._delete_oldest(db, self._count - policy.max_messages)
                if policy.max_bytes is not None:
                    target = policy.max_bytes * BYTES_LOW_WATER
                    while self._count and self._used_bytes(db) > target:
                        deleted += self._delete_oldest(db, max(1, self._count // 20))
                    self._shrink_to_cap(db, policy.max_bytes)
                if deleted:
                    # Topics no message refers to any more (bounded by what is stored).
                    db.execute(
                        "DELETE FROM topics WHERE NOT EXISTS"
                        " (SELECT 1 FROM messages WHERE pubsub_id = topics.id)"
                        " AND NOT EXISTS (SELECT 1 FROM messages WHERE content_id = topics.id)"
                    )
                    self._forget_topic_cache()
                db.execute("PRAGMA optimize")
            except sqlite3.Error as exc:
                raise ArchiveError(f"retention failed: {exc}") from exc
        return deleted

    def _shrink_to_cap(self, db: sqlite3.Connection, max_bytes: int) -> None:
        # A file that is over the cap (the cap was lowered) hands free pages back, and the
        # page limit follows it down to the cap.
        cap_pages = max(1, max_bytes // self._page_size)
        if int(db.execute("PRAGMA page_count").fetchone()[0]) > cap_pages:
            # executescript steps the pragma to completion (execute frees a single page).
            db.executescript("PRAGMA incremental_vacuum;")
        db.execute(f"PRAGMA max_page_count = {cap_pages}")

    def message_count(self) -> int:
        with self._lock:
            self._conn()
            return self._count

    def size_bytes(self) -> int:
        with self._lock:
            db = self._conn()
            return int(db.execute("PRAGMA page_count").fetchone()[0]) * self._page_size

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
