"""Every archive backend (SQLite, and PostgreSQL on a real server): ordering, every query
form, cursors, retention, byte cap. PostgreSQL partitions: test_postgres_archive.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness.archives import OTHER_PUBSUB, PUBSUB, SECOND, T0, ArchiveBackend, record

from storage.archive import (
    Archive,
    ArchiveFull,
    ArchiveQuery,
    ArchiveUnavailable,
    CursorNotFound,
    RetentionPolicy,
    SqliteArchive,
)
from storage.archive.postgres import PostgresArchive


def scaled_cap(backend: ArchiveBackend, sqlite_cap: int) -> int:
    # An empty PostgreSQL partition takes ~80 KiB of pages: its caps are larger.
    return sqlite_cap * 8 if backend.is_postgres else sqlite_cap


@pytest.fixture
def archive(archive_backend: ArchiveBackend) -> Iterator[Archive]:
    a = archive_backend.open()
    yield a
    a.close()


def test_insert_dedupes_by_hash(archive: Archive) -> None:
    assert archive.insert(record(1)) is True
    assert archive.insert(record(1)) is False
    assert archive.message_count() == 1
    # In bulk too, duplicates within the batch included.
    assert archive.insert_many([record(0), record(1), record(2), record(0)]) == 2
    assert archive.message_count() == 3


def test_forward_and_backward_walk_in_timestamp_then_hash_order(archive: Archive) -> None:
    # Three messages share a timestamp: the hash breaks the tie.
    recs = [record(i, ts=T0 + (i // 3) * SECOND) for i in range(9)]
    archive.insert_many(recs)
    expected = sorted(recs, key=lambda r: (r.timestamp, r.message_hash))
    fwd = archive.query(ArchiveQuery(limit=100, forward=True))
    assert [r.message_hash for r in fwd] == [r.message_hash for r in expected]
    back = archive.query(ArchiveQuery(limit=100, forward=False))
    assert [r.message_hash for r in back] == [r.message_hash for r in reversed(expected)]


def test_cursor_is_exclusive_in_both_directions(archive: Archive) -> None:
    recs = [record(i) for i in range(10)]
    archive.insert_many(recs)
    after = archive.query(ArchiveQuery(cursor=recs[4].message_hash, forward=True, limit=3))
    assert [r.message_hash for r in after] == [r.message_hash for r in recs[5:8]]
    before = archive.query(ArchiveQuery(cursor=recs[4].message_hash, forward=False, limit=3))
    assert [r.message_hash for r in before] == [r.message_hash for r in recs[3:0:-1]]


def test_unknown_cursor_is_an_error(archive: Archive) -> None:
    archive.insert(record(1))
    with pytest.raises(CursorNotFound):
        archive.query(ArchiveQuery(cursor=b"\x01" * 32))


def test_filters_are_anded(archive: Archive) -> None:
    recs = [
        record(0, topic="/app/1/a/proto"),
        record(1, topic="/app/1/b/proto"),
        record(2, topic="/app/1/a/proto", pubsub=OTHER_PUBSUB),
        record(3, topic="/app/1/c/proto"),
        record(4, topic="/app/1/a/proto"),
    ]
    archive.insert_many(recs)

    def hashes(q: ArchiveQuery) -> list[bytes]:
        return [r.message_hash for r in archive.query(q)]

    ab = ("/app/1/a/proto", "/app/1/b/proto")
    assert hashes(ArchiveQuery(pubsub_topic=PUBSUB, content_topics=ab)) == [
        recs[i].message_hash for i in (0, 1, 4)
    ]
    assert hashes(ArchiveQuery(content_topics=("/app/1/a/proto",))) == [
        recs[i].message_hash for i in (0, 2, 4)
    ]
    assert hashes(ArchiveQuery(pubsub_topic=OTHER_PUBSUB)) == [recs[2].message_hash]
    # Time range is inclusive at both ends, as nwaku's SQL.
    assert hashes(ArchiveQuery(time_start=T0 + SECOND, time_end=T0 + 3 * SECOND)) == [
        recs[i].message_hash for i in (1, 2, 3)
    ]
    assert hashes(ArchiveQuery(time_start=T0 + 3 * SECOND, time_end=T0 + SECOND)) == []
    assert hashes(ArchiveQuery(pubsub_topic="/waku/2/rs/42/7")) == []
    assert hashes(ArchiveQuery(content_topics=("/never/1/seen/proto",))) == []
    wanted = (recs[3].message_hash, recs[0].message_hash, b"\x09" * 32)
    assert hashes(ArchiveQuery(message_hashes=wanted)) == [
        recs[0].message_hash,
        recs[3].message_hash,
    ]


def test_include_data_returns_topic_and_verbatim_bytes(archive: Archive) -> None:
    rec = record(7, pubsub=OTHER_PUBSUB)
    archive.insert(rec)
    (row,) = archive.query(ArchiveQuery(include_data=True))
    assert (row.pubsub_topic, row.message, row.timestamp) == (
        OTHER_PUBSUB,
        rec.message,
        rec.timestamp,
    )
    (bare,) = archive.query(ArchiveQuery())
    assert bare.message is None and bare.pubsub_topic is None


def test_present_reports_only_stored_hashes(archive: Archive) -> None:
    recs = [record(i) for i in range(600)]
    archive.insert_many(recs)
    asked = [r.message_hash for r in recs[::2]] + [b"\x07" * 32]
    assert archive.present(asked) == {r.message_hash for r in recs[::2]}
    assert archive.present([]) == set()


@pytest.mark.parametrize(
    "query",
    [
        ArchiveQuery(
            pubsub_topic=PUBSUB,
            content_topics=("/app/1/a/proto", "/app/1/b/proto"),
            time_start=T0,
            time_end=T0 + 3600 * SECOND,
        ),
        ArchiveQuery(pubsub_topic=PUBSUB, forward=False),
        ArchiveQuery(content_topics=("/app/1/a/proto",)),
        ArchiveQuery(time_start=T0, time_end=T0 + 60 * SECOND),
        ArchiveQuery(forward=False),
        ArchiveQuery(message_hashes=(b"\x01" * 32, b"\x02" * 32)),
        ArchiveQuery(message_hashes=(record(5).message_hash, record(150).message_hash)),
    ],
)
def test_every_query_form_is_served_by_an_index(
    archive_backend: ArchiveBackend, query: ArchiveQuery
) -> None:
    archive = archive_backend.open()
    assert isinstance(archive, SqliteArchive | PostgresArchive)
    count = 2000 if archive_backend.is_postgres else 200  # PostgreSQL scans tiny tables
    archive.insert_many(
        [record(i, topic=f"/app/1/{'ab'[i % 2]}/proto", size=20) for i in range(count)]
    )
    if isinstance(archive, PostgresArchive):
        archive.analyze()
    cursor = record(100).message_hash
    for q in (query, ArchiveQuery(**{**_fields(query), "cursor": cursor})):
        plan = " | ".join(archive.explain(q))
        if isinstance(archive, SqliteArchive):
            assert "INDEX" in plan, plan
            assert "SCAN messages " not in plan.replace("SCAN messages USING COVERING INDEX", ""), (
                plan
            )
        else:
            # (A cursor past the time range leaves nothing to scan: "One-Time Filter: false";
            # hashes it does not hold, nothing to ask: no plan.)
            assert "Seq Scan" not in plan, plan
            assert not plan or "Index" in plan or "One-Time Filter: false" in plan, plan
    archive.close()


def _fields(q: ArchiveQuery) -> dict[str, object]:
    return {name: getattr(q, name) for name in ArchiveQuery.__dataclass_fields__}


def test_retention_by_age_and_by_count(archive_backend: ArchiveBackend) -> None:
    a = archive_backend.open(RetentionPolicy(max_age_ns=50 * SECOND, max_messages=30))
    a.insert_many([record(i) for i in range(100)])
    # Age drops timestamps older than now - 50 s (i < 49), count keeps the newest 30.
    deleted = a.apply_retention(T0 + 99 * SECOND)
    assert deleted == 70
    left = a.query(ArchiveQuery(limit=100))
    assert [r.message_hash for r in left] == [record(i).message_hash for i in range(70, 100)]
    assert a.message_count() == 30
    a.close()


def test_byte_cap_keeps_the_file_bounded_and_the_newest_messages(
    archive_backend: ArchiveBackend,
) -> None:
    pg = archive_backend.is_postgres
    cap = 2 * 1024 * 1024 if pg else 512 * 1024
    # PostgreSQL evicts whole partitions: twenty seconds' worth each here.
    a = archive_backend.open(RetentionPolicy(max_bytes=cap), partition_ns=20 * SECOND)
    total, size = (500, 8000) if pg else (400, 4000)  # about twice the cap of payload
    for i in range(total):
        a.insert(record(i, size=size))
        assert a.size_bytes() <= cap
    assert 0 < a.message_count() < total
    newest = a.query(ArchiveQuery(forward=False, limit=1))
    assert newest[0].message_hash == record(total - 1).message_hash
    a.apply_retention(T0)
    assert a.size_bytes() <= cap
    a.close()


def test_a_write_that_cannot_fit_is_archive_full_and_the_archive_survives(
    archive_backend: ArchiveBackend,
) -> None:
    cap = scaled_cap(archive_backend, 128 * 1024)
    a = archive_backend.open(RetentionPolicy(max_bytes=cap))
    a.insert(record(1))
    with pytest.raises(ArchiveFull):
        a.insert(record(2, size=cap * 2))
    assert a.insert(record(3)) is True
    # Nothing was evicted for a write that could never fit.
    assert a.present([record(1).message_hash, record(3).message_hash]) == {
        record(1).message_hash,
        record(3).message_hash,
    }
    a.close()


def test_reopen_keeps_messages_and_count(archive_backend: ArchiveBackend) -> None:
    a = archive_backend.open()
    a.insert_many([record(i) for i in range(5)])
    a.close()
    b = archive_backend.open()
    assert b.message_count() == 5
    assert len(b.query(ArchiveQuery(include_data=True))) == 5
    b.close()


def test_closed_archive_is_unavailable(archive_backend: ArchiveBackend) -> None:
    a = archive_backend.open()
    a.close()
    with pytest.raises(ArchiveUnavailable):
        a.query(ArchiveQuery())
    with pytest.raises(ArchiveUnavailable):
        a.insert(record(1))


def test_retention_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetentionPolicy(max_bytes=0)


def test_lowering_the_byte_cap_shrinks_the_file_on_the_next_retention_pass(
    archive_backend: ArchiveBackend,
) -> None:
    partition = 50 * SECOND
    a = archive_backend.open(partition_ns=partition)
    a.insert_many([record(i, size=2000) for i in range(500)])
    assert a.size_bytes() > 1024 * 1024
    a.close()
    cap = scaled_cap(archive_backend, 256 * 1024) // 2
    b = archive_backend.open(RetentionPolicy(max_bytes=cap), partition_ns=partition)
    assert b.apply_retention(T0) > 0
    assert b.size_bytes() <= cap
    assert b.insert(record(1000, size=2000)) is True
    assert b.size_bytes() <= cap
    b.close()


def test_retention_forgets_topics_nothing_refers_to(archive_backend: ArchiveBackend) -> None:
    a = archive_backend.open(RetentionPolicy(max_messages=1))
    a.insert_many([record(i, topic=f"/app/1/t{i}/proto") for i in range(5)])
    a.apply_retention(T0)
    assert a.query(ArchiveQuery(content_topics=("/app/1/t0/proto",))) == []
    assert len(a.query(ArchiveQuery(content_topics=("/app/1/t4/proto",)))) == 1
    # A forgotten topic comes back with the next message that uses it.
    a.insert(record(10, topic="/app/1/t0/proto"))
    assert len(a.query(ArchiveQuery(content_topics=("/app/1/t0/proto",)))) == 1
    a.close()


def test_a_page_with_data_stops_at_its_byte_budget_and_says_more_exist(
    archive: Archive,
) -> None:
    archive.insert_many([record(i, size=100_000) for i in range(10)])
    rows = archive.query(ArchiveQuery(include_data=True, limit=10, max_bytes=350_000))
    # Three messages fit; the fourth is named (hash, timestamp) but not read.
    assert [r.message is not None for r in rows] == [True, True, True, False]
    assert rows[-1].beyond_budget and rows[-1].message_hash == record(3).message_hash
    assert sum(len(r.message or b"") for r in rows) <= 350_000
    # A message larger than the whole budget still comes alone, so paging always advances.
    (alone, marker) = archive.query(ArchiveQuery(include_data=True, limit=10, max_bytes=10))
    assert alone.message is not None and marker.beyond_budget
    # Without data, or without a budget, the limit alone decides.
    assert len(archive.query(ArchiveQuery(limit=10, max_bytes=10))) == 10
    assert len(archive.query(ArchiveQuery(include_data=True, limit=10))) == 10
    whole = archive.query(ArchiveQuery(include_data=True, limit=4, max_bytes=10**7))
    assert len(whole) == 4 and not any(r.beyond_budget for r in whole)
