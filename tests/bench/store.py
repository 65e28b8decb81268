"""Store benchmark: an archive of generated messages, then the queries a store node serves.

    python tests/bench/store.py            # 1,000,000 messages
    python tests/bench/store.py --quick    # 100,000 messages
    python tests/bench/store.py --quick --messages 2000 --repeat 5   # smoke run
    python tests/bench/store.py --postgres            # also on a throwaway PostgreSQL server
    python tests/bench/store.py --postgres postgresql://user@host/db   # on that database

Messages: 50 content topics over two shards, spread over 7 days, 200-byte payloads. Queries
run through the store query core (request bytes in, response bytes out) on the SQLite
archive, so response building and encoding are included; the network is not. With
`--postgres` they run on the PostgreSQL archive too (hourly partitions, same messages, same
answers checked). The same queries then run on a "naive" SQLite schema (one table, topics
as text, only the hash key) as a side-by-side peer. nwaku's published target is the
anchor: p95 under 10 ms for hash queries of up to 10 hashes and for 1-hour 10-topic range
queries.

Prints one JSON line per measurement: query, p50_ms, p95_ms, archive_messages, backend (and
msgs_per_s for inserts).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from chat.waku.message import WakuMessage  # noqa: E402
from chat.waku.store.server_core import QueryPlan, answer, plan_query  # noqa: E402
from chat.waku.store.wire import StoreQueryRequest, StoreQueryResponse  # noqa: E402
from storage.archive import (  # noqa: E402
    Archive,
    ArchiveQuery,
    ArchiveRecord,
    ArchiveRow,
    SqliteArchive,
)
from storage.archive.sqlite import page_select  # noqa: E402

SECOND = 10**9
HOUR = 3600 * SECOND
DAYS = 7
TOPICS = [f"/bench/1/topic-{i}/proto" for i in range(50)]
SHARDS = ["/waku/2/rs/42/0", "/waku/2/rs/42/1"]
START = 1_700_000_000 * SECOND
NWAKU_TARGET_P95_MS = 10.0


def shard_of(topic_index: int) -> str:
    return SHARDS[topic_index % 2]


def generate(n: int, seed: int = 1) -> Iterator[ArchiveRecord]:
    rng = random.Random(seed)
    span = DAYS * 24 * HOUR
    step = span // n
    for i in range(n):
        t = rng.randrange(len(TOPICS))
        msg = WakuMessage(
            payload=i.to_bytes(8, "big") * 25,
            content_topic=TOPICS[t],
            timestamp=START + i * step + rng.randrange(step),
        )
        pubsub = shard_of(t)
        yield ArchiveRecord(
            msg.hash(pubsub), pubsub, msg.content_topic, msg.timestamp, msg.encode()
        )


class NaiveArchive:
    """The comparison peer: the obvious schema, without our indexes or topic table."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute(
            "CREATE TABLE messages (hash BLOB PRIMARY KEY, pubsub_topic TEXT, "
            "content_topic TEXT, timestamp INTEGER, message BLOB)"
        )

    def insert_many(self, records: list[ArchiveRecord]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?)",
            [
                (r.message_hash, r.pubsub_topic, r.content_topic, r.timestamp, r.message)
                for r in records
            ],
        )
        self.db.execute("COMMIT")

    def query(self, q: ArchiveQuery) -> list[ArchiveRow]:
        cursor_timestamp = None
        if q.cursor is not None:
            row = self.db.execute(
                "SELECT timestamp FROM messages WHERE hash = ?", (q.cursor,)
            ).fetchone()
            if row is None:
                return []
            cursor_timestamp = int(row[0])
        sql, params = page_select(
            q,
            columns="hash, timestamp, pubsub_topic, message",
            cursor_timestamp=cursor_timestamp,
            pubsub=None if q.pubsub_topic is None else ("pubsub_topic", q.pubsub_topic),
            content=("content_topic", q.content_topics) if q.content_topics else None,
        )
        rows = self.db.execute(sql, params).fetchall()
        if q.include_data:
            return [ArchiveRow(r[0], r[1], r[2], r[3]) for r in rows]
        return [ArchiveRow(r[0], r[1]) for r in rows]


def serve(archive: Any, request: StoreQueryRequest) -> bytes:
    """What the server does between reading a request and writing a response."""
    plan = plan_query(request.encode())
    assert isinstance(plan, QueryPlan), plan
    response = answer(plan, archive.query(plan.archive_query))
    assert response.status_code == 200, response.status_desc
    return response.encode()


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return round(p50, 3), round(p95, 3)


def measure(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return percentiles(samples)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def run(n: int, repeat: int, workdir: Path, postgres_url: str | None = None) -> None:
    rng = random.Random(7)
    archive = SqliteArchive(workdir / "archive.db")
    naive = NaiveArchive(workdir / "naive.db")
    pg: Archive | None = None
    pg_load_s = 0.0
    if postgres_url is not None:
        from storage.archive.postgres import PostgresArchive

        pg = PostgresArchive(postgres_url)
    sample_hashes: list[bytes] = []
    batch: list[ArchiveRecord] = []
    load_s = 0.0
    for rec in generate(n):
        if len(sample_hashes) < 20_000 or rng.random() < 0.01:
            sample_hashes.append(rec.message_hash)
        batch.append(rec)
        if len(batch) == 10_000:
            t = time.perf_counter()
            archive.insert_many(batch)
            load_s += time.perf_counter() - t
            naive.insert_many(batch)
            pg_load_s += _timed_insert(pg, batch)
            batch = []
    if batch:
        t = time.perf_counter()
        archive.insert_many(batch)
        load_s += time.perf_counter() - t
        naive.insert_many(batch)
        pg_load_s += _timed_insert(pg, batch)
    archive.apply_retention(START)  # refreshes the planner's statistics (PRAGMA optimize)
    emit(
        query="insert_bulk_10k_batches",
        msgs_per_s=round(n / load_s),
        archive_messages=n,
        backend="chinwag-sqlite",
        p50_ms=None,
        p95_ms=None,
    )
    if pg is not None:
        assert isinstance(pg, PostgresArchive)
        pg.analyze()
        emit(
            query="insert_bulk_10k_batches",
            msgs_per_s=round(n / pg_load_s),
            archive_messages=n,
            backend="chinwag-postgresql",
            p50_ms=None,
            p95_ms=None,
        )

    # One message at a time, as relay delivers them (each its own transaction).
    singles = list(generate(min(2000, max(200, n // 50)), seed=99))
    samples = []
    t_all = time.perf_counter()
    for rec in singles:
        t = time.perf_counter()
        archive.insert(rec)
        samples.append((time.perf_counter() - t) * 1000)
    rate = len(singles) / (time.perf_counter() - t_all)
    naive.insert_many(singles)  # both hold the same messages
    p50, p95 = percentiles(samples)
    total = archive.message_count()
    emit(
        query="insert_single",
        p50_ms=p50,
        p95_ms=p95,
        msgs_per_s=round(rate),
        archive_messages=total,
        backend="chinwag-sqlite",
    )
    if pg is not None:
        samples = []
        t_all = time.perf_counter()
        for rec in singles:
            t = time.perf_counter()
            pg.insert(rec)
            samples.append((time.perf_counter() - t) * 1000)
        rate = len(singles) / (time.perf_counter() - t_all)
        p50, p95 = percentiles(samples)
        emit(
            query="insert_single",
            p50_ms=p50,
            p95_ms=p95,
            msgs_per_s=round(rate),
            archive_messages=pg.message_count(),
            backend="chinwag-postgresql",
        )

    span = DAYS * 24 * HOUR
    shard0_topics = [t for i, t in enumerate(TOPICS) if shard_of(i) == SHARDS[0]]

    def presence(k: int) -> StoreQueryRequest:
        return StoreQueryRequest(
            request_id="b",
            message_hashes=tuple(rng.sample(sample_hashes, k)),
            pagination_forward=True,
            pagination_limit=100,
        )

    def lookup10() -> StoreQueryRequest:
        return StoreQueryRequest(
            request_id="b", include_data=True, message_hashes=tuple(rng.sample(sample_hashes, 10))
        )

    def range_1h() -> StoreQueryRequest:
        start = START + rng.randrange(span - HOUR)
        return StoreQueryRequest(
            request_id="b",
            include_data=True,
            pubsub_topic=SHARDS[0],
            content_topics=tuple(rng.sample(shard0_topics, 10)),
            time_start=start,
            time_end=start + HOUR,
            pagination_limit=100,
        )

    deep_topics = tuple(shard0_topics[:10])
    deep_base = StoreQueryRequest(
        request_id="b",
        include_data=True,
        pubsub_topic=SHARDS[0],
        content_topics=deep_topics,
        time_start=START,
        time_end=START + span,
        pagination_forward=True,
        pagination_limit=100,
    )
    # Walk to page 50 once to collect cursors, then measure fetching pages 46..55.
    cursors: list[bytes] = []
    req = deep_base
    for _ in range(55):
        resp = StoreQueryResponse.decode(serve(archive, req))
        if resp.pagination_cursor is None:
            break
        cursors.append(resp.pagination_cursor)
        req = StoreQueryRequest(
            **{**_fields(deep_base), "pagination_cursor": resp.pagination_cursor}
        )
    deep_cursors = cursors[45:55] or cursors[-1:]

    def deep() -> StoreQueryRequest:
        return StoreQueryRequest(
            **{**_fields(deep_base), "pagination_cursor": rng.choice(deep_cursors)}
        )

    queries: list[tuple[str, Callable[[], StoreQueryRequest]]] = [
        ("presence_50_hashes", lambda: presence(50)),
        ("hash_lookup_10_with_data", lookup10),
        ("range_1h_10_topics_first_page_100", range_1h),
        (f"deep_page_{len(cursors[:50])}_pages_in", deep),
    ]
    # Like for like: both backends give the same answer to each kind of query.
    for name, make in queries:
        request = make()
        expected = serve(archive, request)
        assert serve(naive, request) == expected, f"{name}: answers differ"
        if pg is not None:
            assert serve(pg, request) == expected, f"{name}: PostgreSQL's answer differs"
    backends: list[tuple[str, Any, int]] = [("chinwag-sqlite", archive, repeat)]
    if pg is not None:
        backends.append(("chinwag-postgresql", pg, repeat))
    backends.append(("naive-sqlite", naive, max(3, repeat // 10)))
    for backend, store, reps in backends:
        for name, make in queries:
            p50, p95 = measure(lambda make=make, store=store: serve(store, make()), reps)
            emit(
                query=name,
                p50_ms=p50,
                p95_ms=p95,
                archive_messages=total,
                backend=backend,
                runs=reps,
                nwaku_target_p95_ms=NWAKU_TARGET_P95_MS,
            )
    emit(
        query="archive_size",
        archive_messages=total,
        backend="chinwag-sqlite",
        bytes=archive.size_bytes(),
        p50_ms=None,
        p95_ms=None,
    )
    archive.close()
    if pg is not None:
        emit(
            query="archive_size",
            archive_messages=pg.message_count(),
            backend="chinwag-postgresql",
            bytes=pg.size_bytes(),
            partitions=len(pg.partitions()),  # type: ignore[attr-defined]
            p50_ms=None,
            p95_ms=None,
        )
        pg.close()


def _timed_insert(archive: Archive | None, batch: list[ArchiveRecord]) -> float:
    if archive is None:
        return 0.0
    t = time.perf_counter()
    archive.insert_many(batch)
    return time.perf_counter() - t


def _fields(req: StoreQueryRequest) -> dict[str, Any]:
    return {name: getattr(req, name) for name in StoreQueryRequest.__dataclass_fields__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="100,000 messages instead of 1,000,000"
    )
    parser.add_argument("--messages", type=int, help="archive size (overrides --quick)")
    parser.add_argument("--repeat", type=int, default=200, help="runs per query (default 200)")
    parser.add_argument(
        "--dir", type=Path, help="where to build the archives (default: a temp dir)"
    )
    parser.add_argument(
        "--postgres", nargs="?", const="start", metavar="URL",
        help="also run on PostgreSQL: an empty database's URL, or nothing to start a "
        "throwaway server (tests/harness/postgres.py)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    n = args.messages or (100_000 if args.quick else 1_000_000)
    server = None
    url = args.postgres
    if url == "start":
        sys.path.insert(0, str(REPO / "tests"))
        from harness import postgres

        server = postgres.start()
        url = server.new_database()
    try:
        if args.dir:
            args.dir.mkdir(parents=True, exist_ok=True)
            run(n, args.repeat, args.dir, url)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                run(n, args.repeat, Path(tmp), url)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
