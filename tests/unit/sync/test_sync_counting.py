"""Transfers archived at the same time are all counted (the count is read after the archive
call returns, not before it: a read before it lost the other transfer's messages)."""

from __future__ import annotations

from pathlib import Path

import trio
from harness.sync import SHARD0, history

from chat.waku.store.archiver import MessageArchiver
from chat.waku.sync.service import SyncService
from storage.archive import SqliteArchive


async def test_concurrent_transfers_are_all_counted(tmp_path: Path) -> None:
    archive = SqliteArchive(tmp_path / "archive.sqlite")
    service = SyncService(archive, MessageArchiver(archive), [SHARD0])
    first, second = history(100), history(100)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service._archive, first)
        nursery.start_soon(service._archive, second)
    assert archive.message_count() == 200
    assert service.counters["items_received"] == 200
    archive.close()
