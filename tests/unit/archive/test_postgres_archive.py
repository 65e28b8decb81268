"""PostgreSQL archive specifics on a real server: partitions, their drops, the byte cap under
load, and several archives (store nodes) sharing one database."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from harness.archives import PUBSUB, SECOND, T0, ArchiveBackend, record

from storage.archive import (
    ArchiveError,
    ArchiveQuery,
    ArchiveRow,
    ArchiveUnavailable,
    RetentionPolicy,
    SqliteArchive,
)
from storage.archive import postgres as pg_archive
from storage.archive.postgres import HASHES, RETENTION_LOCK, TABLE, PostgresArchive

PARTITION = 10 * SECOND


@pytest.fixture
def backend(postgres_archive_backend: ArchiveBackend) -> ArchiveBackend:
    return postgres_archive_backend


def open_pg(backend: ArchiveBackend, retention: RetentionPolicy | None = None) -> PostgresArchive:
    archive = backend.open(retention, partition_ns=PARTITION)
    assert isinstance(archive, PostgresArchive)
    return archive


def catalog_partitions(backend: ArchiveBackend) -> list[str]:
    with psycopg.connect(backend.location()) as db:
        rows = db.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            (TABLE,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_messages_land_in_time_partitions_and_age_retention_drops_whole_ones(
    backend: ArchiveBackend,
) -> None:
    archive = open_pg(backend, RetentionPolicy(max_age_ns=25 * SECOND))
    archive.insert_many([record(i) for i in range(50)])  # T0 .. T0 + 49 s: five partitions
    assert [start for start, _ in archive.partitions()] == [
        T0 - T0 % PARTITION + k * PARTITION for k in range(5)
    ]
    assert len(catalog_partitions(backend)) == 5
    # Cutoff T0 + 24 s: the two partitions wholly before it are dropped (tables gone), the
    # one it falls into loses its rows before the cutoff.
    assert archive.apply_retention(T0 + 49 * SECOND) == 24
    assert len(catalog_partitions(backend)) == 3
    assert archive.message_count() == 26
    left = archive.query(ArchiveQuery(limit=100))
    assert [r.message_hash for r in left] == [record(i).message_hash for i in range(24, 50)]
    archive.close()


def test_retention_by_count_drops_partitions_then_rows(backend: ArchiveBackend) -> None:
    archive = open_pg(backend, RetentionPolicy(max_messages=15))
    archive.insert_many([record(i) for i in range(40)])
    assert archive.apply_retention(T0) == 25
    assert len(catalog_partitions(backend)) == 2
    left = archive.query(ArchiveQuery(limit=100))
    assert [r.message_hash for r in left] == [record(i).message_hash for i in range(25, 40)]
    archive.close()


@pytest.mark.slow
def test_the_cap_drops_the_oldest_partitions_and_keeps_the_newest(
    backend: ArchiveBackend,
) -> None:
    cap = 2 * 1024 * 1024
    archive = open_pg(backend, RetentionPolicy(max_bytes=cap))
    dropped = False
    for i in range(1500):  # 6 MB of payload at 10 messages a partition
        archive.insert(record(i, size=4000))
        assert archive.size_bytes() <= cap
        dropped = dropped or len(catalog_partitions(backend)) < i // 10 + 1
    assert dropped
    assert archive.partitions()[-1][0] == T0 - T0 % PARTITION + 149 * PARTITION
    newest = archive.query(ArchiveQuery(forward=False, limit=1))
    assert newest[0].message_hash == record(1499).message_hash
    archive.close()


def test_the_cap_holds_when_one_partition_takes_everything(backend: ArchiveBackend) -> None:
    # One partition for all of it (a width far too wide for the cap): the oldest rows go
    # and their space is reused, so the table stops growing at the cap.
    cap = 2 * 1024 * 1024
    archive = backend.open(RetentionPolicy(max_bytes=cap), partition_ns=10**6 * SECOND)
    for i in range(1000):
        archive.insert(record(i, size=4000))
        assert archive.size_bytes() <= cap
    assert 0 < archive.message_count() < 1000
    assert archive.present([record(999).message_hash]) == {record(999).message_hash}
    archive.close()


def run_threads(*targets: Callable[[], None]) -> None:
    failures: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures


def test_two_nodes_sharing_a_database_store_each_message_once(backend: ArchiveBackend) -> None:
    first, second = open_pg(backend), open_pg(backend)
    records = [record(i) for i in range(300)]
    added: list[int] = []

    def writer(archive: PostgresArchive) -> Callable[[], None]:
        return lambda: added.append(sum(archive.insert(r) for r in records))

    run_threads(writer(first), writer(second))
    assert sum(added) == 300
    assert first.message_count() == second.message_count() == 300
    first.close()
    second.close()


@pytest.mark.slow
def test_the_cap_holds_for_nodes_writing_to_one_database(backend: ArchiveBackend) -> None:
    cap = 4 * 1024 * 1024
    # Each node measures at least every 50 ms: the headroom under the cap (5 % and the
    # vacuum reserve) must take what all nodes write in that time, here about 1 MB/s.
    nodes = [
        PostgresArchive(
            backend.location(),
            RetentionPolicy(max_bytes=cap),
            partition_ns=PARTITION,
            measure_interval=0.05,
        )
        for _ in range(3)
    ]
    sizes: list[int] = []

    def writer(node: int) -> Callable[[], None]:
        def write() -> None:
            for i in range(node, 1500, 3):
                nodes[node].insert(record(i, size=4000))
                if i % 30 == node:
                    sizes.append(nodes[node].size_bytes())

        return write

    run_threads(*(writer(n) for n in range(3)))
    # A node sees the others' writes only when it measures: between two measurements they
    # can take usage past the headroom. On 2 busy cores that stays within a few per cent.
    assert max(sizes) <= cap * 1.05
    assert nodes[0].size_bytes() <= cap
    assert 0 < nodes[0].message_count() < 1500
    for node in nodes:
        node.close()


def test_retention_runs_once_when_nodes_share_a_database(backend: ArchiveBackend) -> None:
    policy = RetentionPolicy(max_age_ns=25 * SECOND)
    first, second = open_pg(backend, policy), open_pg(backend, policy)
    first.insert_many([record(i) for i in range(50)])
    # While another node holds the retention lock, a pass leaves the work to it.
    with psycopg.connect(backend.location(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (first.lock_key(RETENTION_LOCK),))
        assert first.apply_retention(T0 + 49 * SECOND) == 0
        other.execute("SELECT pg_advisory_unlock(%s)", (first.lock_key(RETENTION_LOCK),))
    deleted: list[int] = []
    run_threads(
        lambda: deleted.append(first.apply_retention(T0 + 49 * SECOND)),
        lambda: deleted.append(second.apply_retention(T0 + 49 * SECOND)),
    )
    assert sum(deleted) == 24
    assert first.message_count() == 26
    first.close()
    second.close()


def test_a_partition_dropped_under_another_nodes_insert_leaves_no_hash_behind(
    backend: ArchiveBackend,
) -> None:
    """Another node inserts into a partition retention is dropping (a synced old message):
    the drop waits for it, and its hash goes with the partition. A hash left behind would
    make the message count as stored (present, sync) and refuse it as a duplicate forever."""
    archive = open_pg(backend, RetentionPolicy(max_age_ns=25 * SECOND))
    archive.insert_many([record(i) for i in range(50)])
    late = record(1000, ts=T0 + 5 * SECOND + 1)
    with (
        psycopg.connect(backend.location()) as other,
        psycopg.connect(backend.location(), autocommit=True) as watcher,
    ):
        # The other node's insert, as the archive makes it, in a transaction still open.
        other.execute(
            f"INSERT INTO {HASHES} (hash, timestamp) VALUES (%s, %s)",
            (late.message_hash, late.timestamp),
        )
        other.execute(
            f"INSERT INTO {TABLE} (timestamp, hash, pubsub_topic, content_topic, message)"
            " VALUES (%s, %s, %s, %s, %s)",
            (late.timestamp, late.message_hash, late.pubsub_topic, late.content_topic,
             late.message),
        )  # fmt: skip
        retention = threading.Thread(target=archive.apply_retention, args=(T0 + 49 * SECOND,))
        retention.start()
        for _ in range(200):
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()
            if waiting and waiting[0]:
                break
            threading.Event().wait(0.05)
        else:
            raise AssertionError("retention never waited for the other node's insert")
        other.commit()
        retention.join(timeout=30)
    assert not retention.is_alive()
    assert archive.present([late.message_hash]) == set()
    assert archive.message_count() == len(archive.query(ArchiveQuery(limit=100))) == 26
    assert archive.insert(late) is True
    archive.close()


def test_a_partition_another_node_dropped_is_created_again(backend: ArchiveBackend) -> None:
    first = open_pg(backend)
    second = open_pg(backend, RetentionPolicy(max_age_ns=5 * SECOND))
    first.insert(record(0))
    second.apply_retention(T0 + 100 * SECOND)  # drops the partition `first` wrote to
    assert catalog_partitions(backend) == []
    assert first.insert(record(1)) is True
    assert first.message_count() == 1
    first.close()
    second.close()


def test_the_databases_partition_width_wins(backend: ArchiveBackend) -> None:
    first = open_pg(backend)
    other = backend.open(partition_ns=3600 * SECOND)
    assert isinstance(other, PostgresArchive) and other.partition_ns == PARTITION
    other.insert(record(0))
    assert first.query(ArchiveQuery())[0].message_hash == record(0).message_hash
    first.close()
    other.close()


def test_partitions_are_bounded(backend: ArchiveBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_archive, "MAX_PARTITIONS", 3)
    archive = open_pg(backend)
    archive.insert_many([record(i * 10) for i in range(3)])
    with pytest.raises(ArchiveError, match="partitions"):
        archive.insert(record(1000))
    assert archive.message_count() == 3
    archive.close()


def test_an_unreachable_server_is_unavailable_and_the_password_is_not_shown() -> None:
    with pytest.raises(ArchiveUnavailable) as caught:
        PostgresArchive("postgresql://node:s3cret@127.0.0.1:1/archive")
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://node:s3cret%zz@127.0.0.1:1/archive",
        "postgresql://node@127.0.0.1:1/archive?password=s3cret%zz",
    ],
    ids=["in-userinfo", "as-parameter"],
)
def test_a_password_libpq_cannot_parse_is_not_shown(url: str) -> None:
    """libpq quotes the token it cannot decode; neither the message nor a chained error that
    a traceback would print holds the password."""
    with pytest.raises(ArchiveUnavailable) as caught:
        PostgresArchive(url)
    assert "percent-encoded" in str(caught.value)
    assert "s3cret" not in "".join(traceback.format_exception(caught.value))


def test_a_lost_connection_is_reopened(backend: ArchiveBackend) -> None:
    archive = open_pg(backend)
    archive.insert(record(0))
    with psycopg.connect(backend.location(), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(ArchiveUnavailable):
        archive.insert(record(1))
    assert archive.insert(record(1)) is True
    assert archive.message_count() == 2
    archive.close()


def test_long_ranges_walked_window_by_window_answer_as_sqlite_does(
    backend: ArchiveBackend, tmp_path: Path
) -> None:
    # 400 messages over ~55 minutes, in bursts with empty stretches, on three topics; one
    # partition a minute, so a range spans dozens and is walked in growing windows.
    records = [
        record(i, topic=f"/app/1/t{i % 3}/proto", ts=T0 + (i * 7 + (i // 50) * 120) * SECOND,
               size=100 + (i * 37) % 900)
        for i in range(400)
    ]  # fmt: skip
    postgres = backend.open(partition_ns=60 * SECOND)
    sqlite = SqliteArchive(tmp_path / "same.sqlite")
    for archive in (postgres, sqlite):
        archive.insert_many(records)
    assert len(catalog_partitions(backend)) > 40
    cases = [
        ArchiveQuery(limit=7),
        ArchiveQuery(limit=7, forward=False, include_data=True),
        ArchiveQuery(content_topics=("/app/1/t1/proto",), limit=13, include_data=True),
        ArchiveQuery(pubsub_topic=PUBSUB, content_topics=("/app/1/t0/proto", "/app/1/t2/proto"),
                     time_start=T0 + 300 * SECOND, time_end=T0 + 2500 * SECOND, limit=20,
                     forward=False),
        ArchiveQuery(include_data=True, limit=50, max_bytes=9000),
        ArchiveQuery(include_data=True, limit=50, max_bytes=9000, forward=False,
                     content_topics=("/app/1/t1/proto",)),
    ]  # fmt: skip
    for case in cases:
        # Follow the pages to the end, as a client would: every page must be the same.
        query, pages = case, 0
        while True:
            expected = sqlite.query(query)
            assert postgres.query(query) == expected, (case, pages)
            if len(expected) < query.limit and not (expected and expected[-1].beyond_budget):
                break
            last = expected[-2] if expected[-1].beyond_budget else expected[-1]
            query, pages = replace(query, cursor=last.message_hash), pages + 1
        assert pages >= 3
    postgres.close()
    sqlite.close()


class CountingArchive(PostgresArchive):
    """The real archive, counting the page statements a query runs."""

    statements = 0

    def _page(self, *args: Any, **kwargs: Any) -> list[ArchiveRow]:
        self.statements += 1
        return super()._page(*args, **kwargs)


def test_a_range_far_wider_than_the_archive_walks_only_where_messages_are(
    backend: ArchiveBackend, tmp_path: Path
) -> None:
    """A client may ask from 0 or from -2^63 to 2^63 - 1: walking that range a window at a
    time ran 160,000 statements (23 s holding the archive) for one store query."""
    records = [record(i, topic=f"/app/1/t{i % 2}/proto") for i in range(20)]
    postgres = CountingArchive(backend.location())  # hour-wide partitions, as shipped
    sqlite = SqliteArchive(tmp_path / "same.sqlite")
    for archive in (postgres, sqlite):
        archive.insert_many(records)
    for start, end in [(0, T0 + 3600 * SECOND), (-(2**63), 2**63 - 1)]:
        for topic in ("/app/1/t1/proto", "/nothing/1/x/proto"):
            for forward in (True, False):
                query = ArchiveQuery(
                    pubsub_topic=PUBSUB, content_topics=(topic,), time_start=start,
                    time_end=end, limit=5, forward=forward, include_data=True,
                )  # fmt: skip
                postgres.statements = 0
                assert postgres.query(query) == sqlite.query(query)
                assert postgres.statements <= 5, (start, topic, forward)
    postgres.close()
    sqlite.close()
