"""PostgreSQL archive backend (psycopg 3): the SQLite archive's semantics for a fleet.

Layout: one table `store_messages`, range-partitioned by `timestamp` into partitions of a
fixed width (an hour by default, kept in `store_archive_meta` so every node sharing the
database uses the same one). Partitions are created as messages arrive (the archiver only
takes timestamps near now, so that is the current partition and the next), and the number
of partitions is bounded. Indexes, each walking (timestamp, hash) in order:

- primary key (timestamp, hash): no topic filter, retention, cursors after lookup
- (pubsub_topic, timestamp, hash, content_topic) and (content_topic, timestamp, hash)
- (hash): duplicate checks and cursor lookups (one probe per partition)

Retention by age drops every partition entirely older than the cutoff and deletes the rest
in the one partition the cutoff falls into. The byte cap is measured with
`pg_total_relation_size` over the partitions: writes keep a running estimate of what they
added, a measurement follows when the estimate nears the cap (or a second has passed, as
other nodes may write too), and the oldest partitions are dropped until usage is back under
the low-water mark. Several nodes may share one database: inserts are idempotent by hash,
partition creation is serialised by a transaction advisory lock, and retention and
eviction run under a session advisory lock that a node only tries (a node that finds it
taken leaves the work to the holder).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import errors as pg_errors

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
from storage.archive.sqlite import page_select

TABLE = "store_messages"
HASHES = "store_hashes"
"""Every stored hash with its timestamp, unpartitioned: the one unique index that makes
inserts idempotent across partitions, and what cursors, presence and hash queries look up
(one probe, where the partitioned table would need one per partition)."""
DEFAULT_PARTITION_NS = 3600 * 10**9
MAX_PARTITIONS = 5000
"""More partitions than this is a misconfiguration (a width far too small for the retention)
or an abuse; writes that would need another one are refused."""
# Advisory locks: creating the schema (database-wide, a fixed key), and per archive table
# (its oid, so that archives in different schemas of one database never wait on each
# other) creating partitions and retention with eviction.
SCHEMA_LOCK = 0x63687767_0001
PARTITION_LOCK = 1
RETENTION_LOCK = 2
BYTES_HIGH_WATER = 0.95
BYTES_LOW_WATER = 0.8
ROW_OVERHEAD = 400
"""Bytes a row adds beyond its message (tuple header, topics, four index entries): a
deliberately generous estimate, so the cap is measured before it is reached."""
PARTITION_OVERHEAD = 16 * 8192
"""Bytes a new partition takes before its first row (heap, TOAST and index pages), rounded
up (measured: about 80 KiB)."""
VACUUM_RESERVE = 256 * 1024
"""Room kept under the cap for the free-space and visibility maps a vacuum (ours after
deleting rows, or autovacuum's) adds to a partition without a write."""
INITIAL_GROWTH = 2.0
MAX_GROWTH = 8.0
GROWTH_SAMPLE = 256 * 1024
"""Bytes written between two measurements before their growth ratio is learned from."""
MEASURE_INTERVAL = 1.0
"""Seconds after which a write measures the archive anyway: other nodes sharing the database
write too, and the headroom under the cap (5 % and VACUUM_RESERVE) has to take what the
whole fleet writes in that time."""
WINDOW_PARTITIONS = 32
"""The widest time window one statement of a long range walks (see `_query`)."""
CONNECT_TIMEOUT = 10
STATEMENT_TIMEOUT_MS = 60_000
LOCK_TIMEOUT_MS = 15_000
EVICT_ROWS = 0.25
"""Share of the rows deleted from the only partition left when it alone is over the cap."""

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS store_archive_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS {TABLE} (
    timestamp BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    pubsub_topic TEXT NOT NULL,
    content_topic TEXT NOT NULL,
    message BYTEA NOT NULL,
    PRIMARY KEY (timestamp, hash)
) PARTITION BY RANGE (timestamp);
CREATE TABLE IF NOT EXISTS {HASHES} (
    hash BYTEA PRIMARY KEY,
    timestamp BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS {HASHES}_time ON {HASHES} (timestamp, hash);
CREATE INDEX IF NOT EXISTS {TABLE}_pubsub_time
    ON {TABLE} (pubsub_topic, timestamp, hash, content_topic);
CREATE INDEX IF NOT EXISTS {TABLE}_content_time ON {TABLE} (content_topic, timestamp, hash);
"""


def _partition_name(start: int) -> str:
    return f"{TABLE}_p{start}" if start >= 0 else f"{TABLE}_m{-start}"


def _partition_start(name: str) -> int:
    suffix = name[len(TABLE) + 1 :]
    return int(suffix[1:]) if suffix[0] == "p" else -int(suffix[1:])


def _walk(low: int, high: int, width: int, forward: bool) -> Iterator[tuple[int, int]]:
    """Inclusive windows from `low` to `high` (or back), aligned to partitions of `width`,
    one partition wide at first and doubling up to WINDOW_PARTITIONS."""
    size = width
    if forward:
        at = low
        while at <= high:
            end = min(high, at - at % width + size - 1)
            yield at, end
            at, size = end + 1, min(size * 2, WINDOW_PARTITIONS * width)
    else:
        at = high
        while at >= low:
            start = max(low, at - at % width - (size - width))
            yield start, at
            at, size = start - 1, min(size * 2, WINDOW_PARTITIONS * width)


def redact(url: str) -> str:
    """`url` without its password, for error messages and logs."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    user, host = info.get("user", ""), info.get("host", "")
    return f"postgresql://{user}@{host}:{info.get('port', '')}/{info.get('dbname', '')}"


def scrub(message: str, url: str) -> str:
    """`message` without the password of `url`: libpq quotes the part of a URL it cannot parse
    (a password with a stray %, say) in its error."""
    try:
        parts = urlsplit(url)
        secrets = [parts.password or ""]
    except ValueError:
        return "the URL cannot be parsed"
    secrets += re.findall(r"(?:^|&)password=([^&]*)", parts.query)
    for secret in sorted({*secrets, *map(unquote, secrets)}, key=len, reverse=True):
        if secret:
            message = message.replace(secret, "…")
    return message


class PostgresArchive(Archive):
    """An archive in a PostgreSQL database (`url`: postgresql://user:pass@host:port/db).

    One connection, used under a lock (calls come from worker threads, as with SQLite);
    a broken connection is reopened on the next call."""

    def __init__(
        self,
        url: str,
        retention: RetentionPolicy | None = None,
        *,
        partition_ns: int = DEFAULT_PARTITION_NS,
        measure_interval: float = MEASURE_INTERVAL,
    ) -> None:
        if partition_ns <= 0:
            raise ValueError(f"partition_ns must be positive, not {partition_ns}")
        self.url = url
        self.retention = retention or RetentionPolicy()
        self._lock = threading.Lock()
        self._db: psycopg.Connection[Any] | None = None
        self._closed = False
        self._partitions: set[int] = set()
        self._measured = 0
        self._written = 0
        """Bytes (messages plus ROW_OVERHEAD) this archive wrote since the last measurement."""
        self._growth = INITIAL_GROWTH
        self._measured_at = 0.0
        self.measure_interval = measure_interval
        self._size_after_row_eviction: int | None = None
        with self._lock:
            db = self._conn()
            try:
                with db.transaction():
                    db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                    db.execute(SCHEMA)
                    db.execute(
                        "INSERT INTO store_archive_meta (key, value) VALUES ('partition_ns', %s)"
                        " ON CONFLICT (key) DO NOTHING",
                        (str(partition_ns),),
                    )
                    row = db.execute(
                        "SELECT value FROM store_archive_meta WHERE key = 'partition_ns'"
                    ).fetchone()
                # The database's width wins: partitions of two widths would overlap.
                self.partition_ns = int(row[0]) if row else partition_ns
                oid = db.execute("SELECT %s::regclass::oid::bigint", (TABLE,)).fetchone()
                self._lock_base = int(oid[0]) * 16 if oid else 0
                self._load_partitions(db)
                self._measure(db)
            except psycopg.Error as exc:
                raise ArchiveUnavailable(f"cannot open archive {redact(url)}: {exc}") from exc

    # -- plumbing ---------------------------------------------------------------------------

    def lock_key(self, purpose: int) -> int:
        """The advisory lock key this archive's table uses for `purpose`."""
        return self._lock_base + purpose

    def _conn(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise ArchiveUnavailable("archive is closed")
        if self._db is not None and not self._db.closed and not self._db.broken:
            return self._db
        if self._db is not None:
            self._db.close()
            self._db = None
        try:
            self._db = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                options=self._options(),
            )
        except psycopg.Error as exc:
            # Not chained: the original error may quote the password (a traceback shows it).
            problem = scrub(str(exc), self.url)
            where = redact(self.url)
            raise ArchiveUnavailable(f"cannot reach archive {where}: {problem}") from None
        return self._db

    def _options(self) -> str:
        # Added to the URL's own options (a search_path, say), which a keyword would replace.
        given = str(psycopg.conninfo.conninfo_to_dict(self.url).get("options") or "")
        # Custom plans only: a generic plan (psycopg prepares statements it runs often) cannot
        # leave out partitions by the query's times when it is planned, only at run time.
        ours = (
            f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"
            " -c plan_cache_mode=force_custom_plan"
        )
        return f"{given} {ours}".strip()

    def _load_partitions(self, db: psycopg.Connection[Any]) -> None:
        rows = db.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            (TABLE,),
        ).fetchall()
        self._partitions = {_partition_start(str(r[0])) for r in rows}

    def partitions(self) -> list[tuple[int, int]]:
        """The partitions' [start, end) ranges, oldest first (for tests and operators)."""
        with self._lock:
            self._load_partitions(self._conn())
            return [(s, s + self.partition_ns) for s in sorted(self._partitions)]

    def _ensure_partitions(self, db: psycopg.Connection[Any], timestamps: set[int]) -> None:
        starts = {t - t % self.partition_ns for t in timestamps} - self._partitions
        if not starts:
            return
        if len(self._partitions) + len(starts) > MAX_PARTITIONS:
            self._load_partitions(db)
            starts -= self._partitions
            if len(self._partitions) + len(starts) > MAX_PARTITIONS:
                raise ArchiveError(
                    f"archive would need more than {MAX_PARTITIONS} partitions"
                    " (partition width too small for the retention?)"
                )
        with db.transaction():
            # Another node may create the same partition at the same time.
            db.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key(PARTITION_LOCK),))
            for start in sorted(starts):
                db.execute(
                    f"CREATE TABLE IF NOT EXISTS {_partition_name(start)} PARTITION OF {TABLE}"
                    f" FOR VALUES FROM ({start}) TO ({start + self.partition_ns})"
                )
        self._partitions |= starts
        # A new partition's empty heap and indexes take disk space too.
        self._written += PARTITION_OVERHEAD * len(starts)

    # -- writes -----------------------------------------------------------------------------

    def _insert_rows(self, db: psycopg.Connection[Any], records: Sequence[ArchiveRecord]) -> int:
        self._ensure_partitions(db, {r.timestamp for r in records})
        # Claiming the hash first makes a concurrent insert of the same message (another
        # node) wait for this one and then do nothing.
        sql = (
            f"WITH claimed AS (INSERT INTO {HASHES} (hash, timestamp) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING RETURNING hash, timestamp)"
            f" INSERT INTO {TABLE} (timestamp, hash, pubsub_topic, content_topic, message)"
            " SELECT timestamp, hash, %s, %s, %s FROM claimed"
        )
        rows = [
            (r.message_hash, r.timestamp, r.pubsub_topic, r.content_topic, r.message)
            for r in records
        ]
        with db.transaction(), db.cursor() as cur:
            if len(rows) == 1:
                cur.execute(sql, rows[0])
            else:
                cur.executemany(sql, rows)  # pipelined: one round trip per batch, not per row
            added = max(0, cur.rowcount)
        written = sum(len(r.message) + ROW_OVERHEAD for r in records)
        self._written += written * added // len(records)
        return added

    def _write(self, records: Sequence[ArchiveRecord]) -> int:
        if not records:
            return 0
        cap = self.retention.max_bytes
        incoming = sum(len(r.message) + ROW_OVERHEAD for r in records)
        if cap is not None and incoming > cap // 4:
            raise ArchiveFull(f"archive is full: a write of {incoming} bytes exceeds the cap")
        with self._lock:
            db = self._conn()
            try:
                if cap is not None:
                    starts = {r.timestamp - r.timestamp % self.partition_ns for r in records}
                    incoming += PARTITION_OVERHEAD * len(starts - self._partitions)
                    self._hold_cap(db, cap, incoming)
                try:
                    return self._insert_rows(db, records)
                except pg_errors.CheckViolation:
                    # Another node dropped a partition we knew of: learn and retry once.
                    self._load_partitions(db)
                    return self._insert_rows(db, records)
            except pg_errors.DiskFull as exc:
                raise ArchiveFull(f"archive is full: {exc}") from exc
            except psycopg.OperationalError as exc:
                raise ArchiveUnavailable(f"archive write failed: {exc}") from exc
            except psycopg.Error as exc:
                raise ArchiveError(f"archive write failed: {exc}") from exc

    def _hold_cap(self, db: psycopg.Connection[Any], cap: int, incoming: int) -> None:
        """Before a write of about `incoming` bytes: measure when the estimate nears the cap
        or a measurement is stale, and evict the oldest messages when the write would take
        the archive over the high-water mark."""
        high = cap * BYTES_HIGH_WATER - VACUUM_RESERVE
        stale = time.monotonic() - self._measured_at > self.measure_interval
        if self._estimate() + incoming * self._growth < high and not stale:
            return
        incoming = int(incoming * self._growth)
        if self._measure(db) + incoming >= high:
            self._evict_to(db, int(cap * BYTES_LOW_WATER) - VACUUM_RESERVE - incoming, wait=True)

    def _estimate(self) -> int:
        """The archive's size now: the last measurement and what was written since, scaled
        by how much the disk use grew per byte written (TOAST chunks, index pages)."""
        return self._measured + int(self._written * self._growth)

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
            except psycopg.OperationalError as exc:
                raise ArchiveUnavailable(f"archive query failed: {exc}") from exc
            except psycopg.Error as exc:
                raise ArchiveError(f"archive query failed: {exc}") from exc

    def _resolve_cursor(
        self, db: psycopg.Connection[Any], q: ArchiveQuery
    ) -> tuple[ArchiveQuery, int | None]:
        """The cursor's timestamp, and `q` with the time bound it implies (the same rows,
        said so that the planner can skip the partitions behind the cursor)."""
        if q.cursor is None:
            return q, None
        row = db.execute(f"SELECT timestamp FROM {HASHES} WHERE hash = %s", (q.cursor,)).fetchone()
        if row is None:
            raise CursorNotFound()
        cursor_timestamp = int(row[0])
        if q.forward:
            start = cursor_timestamp if q.time_start is None else q.time_start
            return replace(q, time_start=max(start, cursor_timestamp)), cursor_timestamp
        end = cursor_timestamp if q.time_end is None else q.time_end
        return replace(q, time_end=min(end, cursor_timestamp)), cursor_timestamp

    @staticmethod
    def _hashes_only(q: ArchiveQuery) -> bool:
        return not q.include_data and q.pubsub_topic is None and not q.content_topics

    def _select(
        self, db: psycopg.Connection[Any], q: ArchiveQuery, cursor_timestamp: int | None
    ) -> tuple[str, list[Any]] | None:
        """The SELECT for one page of `q` (its cursor resolved), or None when nothing can
        match."""
        if q.limit <= 0:
            return None
        if self._hashes_only(q):
            # Hashes and timestamps only, no topic filter: the hash table alone answers.
            sql, params = page_select(
                q, columns="hash, timestamp", cursor_timestamp=cursor_timestamp
            )
            return sql.replace("FROM messages", f"FROM {HASHES}").replace("?", "%s"), params
        timestamps: list[int] = []
        if q.message_hashes:
            # Their timestamps name the partitions to look in (the planner prunes the rest).
            rows = db.execute(
                f"SELECT DISTINCT timestamp FROM {HASHES} WHERE hash = ANY(%s)",
                (list(q.message_hashes),),
            ).fetchall()
            if not rows:
                return None
            timestamps = [int(r[0]) for r in rows]
        pubsub = ("pubsub_topic", q.pubsub_topic) if q.pubsub_topic is not None else None
        content = ("content_topic", sorted(set(q.content_topics))) if q.content_topics else None
        columns = "hash, timestamp, pubsub_topic, message" if q.include_data else "hash, timestamp"
        sql, params = page_select(
            q, columns=columns, cursor_timestamp=cursor_timestamp, pubsub=pubsub, content=content
        )
        sql = sql.replace("FROM messages", f"FROM {TABLE}").replace("?", "%s")
        if timestamps:
            # page_select ends with "ORDER BY ... LIMIT ?": the extra condition goes before.
            sql = sql.replace(" ORDER BY ", " AND timestamp = ANY(%s) ORDER BY ", 1)
            params = [*params[:-1], timestamps, params[-1]]
        return sql, params

    def _query(self, db: psycopg.Connection[Any], q: ArchiveQuery) -> list[ArchiveRow]:
        if q.limit <= 0:
            return []
        q, cursor_timestamp = self._resolve_cursor(db, q)
        windows = self._windows(db, q)
        if windows is None:
            return self._page(db, q, cursor_timestamp)
        # A long range is walked a few partitions at a time, in the query's direction, until
        # the page is full: planning a statement over every partition of a week costs more
        # than the few rows a page needs.
        rows: list[ArchiveRow] = []
        budget = q.max_bytes
        for start, end in windows:
            window = replace(
                q, time_start=start, time_end=end, limit=q.limit - len(rows), max_bytes=budget
            )
            part = self._page(db, window, cursor_timestamp, started=bool(rows))
            rows += part
            if len(rows) >= q.limit or (part and part[-1].beyond_budget):
                break
            if budget is not None:
                budget -= sum(len(r.message or b"") for r in part)
        return rows

    def _windows(
        self, db: psycopg.Connection[Any], q: ArchiveQuery
    ) -> Iterator[tuple[int, int]] | None:
        """Inclusive time windows covering `q`'s range in walking order, growing from one
        partition to WINDOW_PARTITIONS; None when one statement is as good (hash queries,
        hashes-only queries, ranges of a couple of partitions)."""
        if q.message_hashes or self._hashes_only(q):
            return None
        row = db.execute(f"SELECT min(timestamp), max(timestamp) FROM {HASHES}").fetchone()
        if row is None or row[0] is None:
            return None
        # Only where messages are: a client may ask from 0 (or -2^63), and walking that a
        # window at a time would run a statement per 32 empty partitions back to 1970.
        low = int(row[0]) if q.time_start is None else max(q.time_start, int(row[0]))
        high = int(row[1]) if q.time_end is None else min(q.time_end, int(row[1]))
        width = self.partition_ns
        if high - low < 2 * width:
            return None
        return _walk(low, high, width, q.forward)

    def _page(
        self,
        db: psycopg.Connection[Any],
        q: ArchiveQuery,
        cursor_timestamp: int | None,
        *,
        started: bool = False,
    ) -> list[ArchiveRow]:
        """One statement's rows. `started`: rows came before these in the same page (so
        even the first may be beyond the byte budget)."""
        statement = self._select(db, q, cursor_timestamp)
        if statement is None:
            return []
        if not q.include_data:
            rows = db.execute(*statement).fetchall()
            return [ArchiveRow(message_hash=bytes(r[0]), timestamp=int(r[1])) for r in rows]
        if q.max_bytes is None:
            return [self._data_row(r) for r in db.execute(*statement).fetchall()]
        # A server-side cursor, read in small batches, so that a page of large messages
        # never holds more than its budget (and one more row) in memory.
        result: list[ArchiveRow] = []
        budget = q.max_bytes
        with db.transaction(), db.cursor(name="archive_page") as cur:
            cur.itersize = 8
            cur.execute(*statement)
            for raw in cur:
                if (result or started) and len(raw[3]) > budget:
                    result.append(ArchiveRow(bytes(raw[0]), int(raw[1]), beyond_budget=True))
                    break
                budget -= len(raw[3])
                result.append(self._data_row(raw))
        return result

    @staticmethod
    def _data_row(raw: Any) -> ArchiveRow:
        return ArchiveRow(bytes(raw[0]), int(raw[1]), str(raw[2]), bytes(raw[3]))

    def explain(self, query: ArchiveQuery) -> list[str]:
        """PostgreSQL's plan for the page `query` asks for (for tests and tuning)."""
        with self._lock:
            db = self._conn()
            query, cursor_timestamp = self._resolve_cursor(db, query)
            statement = self._select(db, query, cursor_timestamp)
            if statement is None:
                return []
            sql, params = statement
            return [str(r[0]) for r in db.execute("EXPLAIN " + sql, params)]

    def analyze(self) -> None:
        """Refresh the planner's statistics (autovacuum does it in time; tests and bulk loads
        want it now)."""
        with self._lock:
            self._conn().execute(f"ANALYZE {TABLE}")

    def present(self, message_hashes: Sequence[bytes]) -> set[bytes]:
        if not message_hashes:
            return set()
        with self._lock:
            db = self._conn()
            found: set[bytes] = set()
            try:
                for start in range(0, len(message_hashes), 500):
                    chunk = list(message_hashes[start : start + 500])
                    rows = db.execute(
                        f"SELECT hash FROM {HASHES} WHERE hash = ANY(%s)", (chunk,)
                    ).fetchall()
                    found.update(bytes(r[0]) for r in rows)
            except psycopg.Error as exc:
                raise ArchiveError(f"archive lookup failed: {exc}") from exc
            return found

    # -- retention and size -----------------------------------------------------------------

    def _measure(self, db: psycopg.Connection[Any]) -> int:
        size = self._size(db)
        if self._written >= GROWTH_SAMPLE and size >= self._measured:
            # Learn the growth per byte written (other nodes' writes make it look larger,
            # which only makes this node measure sooner).
            observed = (size - self._measured) / self._written
            self._growth = min(MAX_GROWTH, max(1.0, observed * 1.25))
        self._measured = size
        self._written = 0
        self._measured_at = time.monotonic()
        return size

    @staticmethod
    def _size(db: psycopg.Connection[Any]) -> int:
        row = db.execute(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)"
            " + pg_total_relation_size(%s::regclass)"
            " FROM pg_partition_tree(%s::regclass) WHERE isleaf",
            (HASHES, TABLE),
        ).fetchone()
        return int(row[0]) if row else 0

    def _oldest_partitions(self, db: psycopg.Connection[Any]) -> Iterator[int]:
        self._load_partitions(db)
        yield from sorted(self._partitions)

    def _drop_partition(self, db: psycopg.Connection[Any], start: int) -> int:
        name = _partition_name(start)
        with db.transaction():
            # The drop first: it waits for other nodes' inserts into the partition, so that
            # the delete (a new snapshot) sees their hashes too and none is left behind.
            db.execute(f"DROP TABLE {name}")
            cur = db.execute(
                f"DELETE FROM {HASHES} WHERE timestamp >= %s AND timestamp < %s",
                (start, start + self.partition_ns),
            )
        self._partitions.discard(start)
        return max(0, cur.rowcount)

    def _delete_oldest(self, db: psycopg.Connection[Any], count: int) -> int:
        return self._delete_where(
            f"(timestamp, hash) IN"
            f" (SELECT timestamp, hash FROM {TABLE} ORDER BY timestamp, hash LIMIT %s)",
            count,
            db=db,
        )

    @staticmethod
    def _delete_where(condition: str, value: int, *, db: psycopg.Connection[Any]) -> int:
        """Delete the messages matching `condition` (one %s, `value`) and their hashes."""
        cur = db.execute(
            f"WITH gone AS (DELETE FROM {TABLE} WHERE {condition} RETURNING hash)"
            f" DELETE FROM {HASHES} WHERE hash IN (SELECT hash FROM gone)",
            (value,),
        )
        return max(0, cur.rowcount)

    def _with_retention_lock(self, db: psycopg.Connection[Any], *, wait: bool) -> bool:
        if wait:
            db.execute("SELECT pg_advisory_lock(%s)", (self.lock_key(RETENTION_LOCK),))
            return True
        row = db.execute(
            "SELECT pg_try_advisory_lock(%s)", (self.lock_key(RETENTION_LOCK),)
        ).fetchone()
        return bool(row and row[0])

    def _evict_to(self, db: psycopg.Connection[Any], target: int, *, wait: bool) -> int:
        """Drop the oldest partitions until the archive measures at most `target` bytes;
        when one partition is left and still over, delete its oldest rows (their space is
        reused by the next writes). Returns how many messages went."""
        if not self._with_retention_lock(db, wait=wait):
            return 0  # another node is evicting; it holds the shared cap
        deleted = 0
        try:
            for start in self._oldest_partitions(db):
                if self._measure(db) <= target or len(self._partitions) <= 1:
                    break
                deleted += self._drop_partition(db, start)
            size = self._measure(db)
            reused = self._size_after_row_eviction
            # Deleted rows leave the file its size: delete again only once the writes have
            # used up the space the last deletion freed (the file grew since).
            if size > target and (reused is None or size > reused):
                row = db.execute(f"SELECT count(*) FROM {HASHES}").fetchone()
                count = int(row[0]) if row else 0
                if count:
                    deleted += self._delete_oldest(db, max(1, int(count * EVICT_ROWS)))
                    db.execute(f"VACUUM {TABLE}, {HASHES}")
                    # The estimate stays at the measured size, so that every write near the
                    # cap measures again until partitions can be dropped.
                    self._size_after_row_eviction = self._measure(db)
        finally:
            db.execute("SELECT pg_advisory_unlock(%s)", (self.lock_key(RETENTION_LOCK),))
        return deleted

    def apply_retention(self, now_ns: int) -> int:
        policy = self.retention
        deleted = 0
        with self._lock:
            db = self._conn()
            try:
                if not self._with_retention_lock(db, wait=False):
                    return 0  # another node sharing the database is applying it
                try:
                    deleted += self._retain(db, policy, now_ns)
                finally:
                    db.execute("SELECT pg_advisory_unlock(%s)", (self.lock_key(RETENTION_LOCK),))
                if (
                    policy.max_bytes is not None
                    and self._measure(db) > policy.max_bytes * BYTES_LOW_WATER
                ):
                    deleted += self._evict_to(
                        db, int(policy.max_bytes * BYTES_LOW_WATER), wait=True
                    )
            except psycopg.Error as exc:
                raise ArchiveError(f"retention failed: {exc}") from exc
        return deleted

    def _retain(self, db: psycopg.Connection[Any], policy: RetentionPolicy, now_ns: int) -> int:
        deleted = 0
        if policy.max_age_ns is not None:
            cutoff = now_ns - policy.max_age_ns
            for start in self._oldest_partitions(db):
                if start + self.partition_ns > cutoff:
                    break
                deleted += self._drop_partition(db, start)
            deleted += self._delete_where("timestamp < %s", cutoff, db=db)
        if policy.max_messages is not None:
            row = db.execute(f"SELECT count(*) FROM {HASHES}").fetchone()
            excess = (int(row[0]) if row else 0) - policy.max_messages
            for start in self._oldest_partitions(db):
                if excess <= 0:
                    break
                name = _partition_name(start)
                size_row = db.execute(f"SELECT count(*) FROM {name}").fetchone()
                if size_row is None or int(size_row[0]) > excess:
                    break
                dropped = self._drop_partition(db, start)
                excess -= dropped
                deleted += dropped
            if excess > 0:
                deleted += self._delete_oldest(db, excess)
        return deleted

    def message_count(self) -> int:
        with self._lock:
            db = self._conn()
            try:
                row = db.execute(f"SELECT count(*) FROM {HASHES}").fetchone()
            except psycopg.Error as exc:
                raise ArchiveError(f"count failed: {exc}") from exc
            return int(row[0]) if row else 0

    def size_bytes(self) -> int:
        with self._lock:
            db = self._conn()
            try:
                return self._size(db)
            except psycopg.Error as exc:
                raise ArchiveError(f"size failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._db is not None:
                self._db.close()
                self._db = None
