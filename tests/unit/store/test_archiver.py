"""Archive eligibility (not ephemeral, ±20 s) and the writer's full-disk behaviour."""

from __future__ import annotations

import trio
from harness.archives import ArchiveBackend

from chat.waku.message import WakuMessage
from chat.waku.store.archiver import (
    MAX_TIMESTAMP_VARIANCE_NS,
    ArchiveOutcome,
    MessageArchiver,
    ineligibility,
)
from storage.archive import RetentionPolicy

NOW = 1_700_000_000 * 10**9
PUBSUB = "/waku/2/rs/42/0"


def msg(ts: int, *, ephemeral: bool = False, size: int = 10) -> WakuMessage:
    return WakuMessage(
        payload=b"x" * size, content_topic="/a/1/b/proto", timestamp=ts, ephemeral=ephemeral
    )


def test_eligibility_window_is_plus_minus_twenty_seconds_inclusive() -> None:
    assert ineligibility(msg(NOW), NOW) is None
    assert ineligibility(msg(NOW - MAX_TIMESTAMP_VARIANCE_NS), NOW) is None
    assert ineligibility(msg(NOW + MAX_TIMESTAMP_VARIANCE_NS), NOW) is None
    assert ineligibility(msg(NOW - MAX_TIMESTAMP_VARIANCE_NS - 1), NOW) is ArchiveOutcome.TOO_OLD
    assert ineligibility(msg(NOW + MAX_TIMESTAMP_VARIANCE_NS + 1), NOW) is ArchiveOutcome.TOO_NEW
    assert ineligibility(msg(0), NOW) is ArchiveOutcome.TOO_OLD
    assert ineligibility(msg(NOW, ephemeral=True), NOW) is ArchiveOutcome.EPHEMERAL


async def test_archiver_stores_dedupes_and_skips_ineligible(
    archive_backend: ArchiveBackend,
) -> None:
    archive = archive_backend.open()
    archiver = MessageArchiver(archive, clock_ns=lambda: NOW)
    assert await archiver.archive_message(PUBSUB, msg(NOW)) is ArchiveOutcome.STORED
    assert await archiver.archive_message(PUBSUB, msg(NOW)) is ArchiveOutcome.DUPLICATE
    assert (
        await archiver.archive_message(PUBSUB, msg(NOW, ephemeral=True)) is ArchiveOutcome.EPHEMERAL
    )
    assert await archiver.archive_message(PUBSUB, msg(NOW - 10**11)) is ArchiveOutcome.TOO_OLD
    assert archive.message_count() == 1
    archive.close()


async def test_full_disk_is_reported_and_the_node_carries_on(
    archive_backend: ArchiveBackend,
) -> None:
    cap = 128 * 1024 * (8 if archive_backend.is_postgres else 1)
    archive = archive_backend.open(RetentionPolicy(max_bytes=cap))
    archiver = MessageArchiver(archive, clock_ns=lambda: NOW)
    huge = msg(NOW, size=cap + 12 * 1024)
    assert await archiver.archive_message(PUBSUB, huge) is ArchiveOutcome.DISK_FULL
    assert archiver.disk_full
    assert await archiver.archive_message(PUBSUB, msg(NOW + 1)) is ArchiveOutcome.STORED
    assert not archiver.disk_full
    assert archiver.outcomes[ArchiveOutcome.DISK_FULL] == 1
    archive.close()


async def test_retention_loop_runs_a_pass_at_start(archive_backend: ArchiveBackend) -> None:
    archive = archive_backend.open(RetentionPolicy(max_messages=1))
    now = [NOW]
    archiver = MessageArchiver(archive, clock_ns=lambda: now[0])
    for i in range(3):
        now[0] = NOW + i
        await archiver.archive_message(PUBSUB, msg(now[0]))
    async with trio.open_nursery() as nursery:
        await nursery.start(archiver.run_retention, 60.0)
        assert archive.message_count() == 1
        assert archiver.retention_passes == 1
        nursery.cancel_scope.cancel()
    for i in range(3, 6):
        await archiver.archive_message(PUBSUB, msg(NOW + i))
    assert await archiver.retention_pass() == 3
    archive.close()
