"""Two real `chinwag node --store` processes heal each other's archives with sync on by
default, and export it on /metrics; their archives SQLite files or PostgreSQL databases
(`--archive postgresql://…`)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from harness.archives import ArchiveBackend
from harness.processes import Chinwag
from harness.sync import archived_hashes, fill, history
from harness.waiting import wait_until


async def scrape(url: str) -> dict[str, float]:
    async with httpx.AsyncClient() as http:
        text = (await http.get(url)).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            samples[series] = float(value)
    return samples


@pytest.mark.slow
async def test_two_node_processes_sync_their_archives(
    tmp_path: Path, archive_backend: ArchiveBackend
) -> None:
    # History older than the 20 s the window leaves to gossip, half of it on each node only.
    records = history(40, end_ns=None, spacing_ns=10**9)
    older = [r for r in records if r.timestamp < records[-1].timestamp - 21 * 10**9]
    names = ["a", "b"]
    paths = [archive_backend.location(name) for name in names]
    for index, name in enumerate(names):
        archive = archive_backend.open(name=name)
        fill(archive, older[index::2])
        archive.close()
    chinwag = Chinwag(tmp_path / "data")
    try:
        node_a = await chinwag.start_node(extra=["--archive", paths[0],
                                                 "--node-key", str(tmp_path / "a.key"),
                                                 "--sync-interval", "5s"])  # fmt: skip
        node_b = await chinwag.start_node(extra=["--archive", paths[1], "--peer", node_a.addr,
                                                 "--node-key", str(tmp_path / "b.key"),
                                                 "--sync-interval", "5s"])  # fmt: skip

        async def both_hold_all() -> bool:
            counts = [(await scrape(n.metrics_url))["chinwag_archive_messages"]
                      for n in (node_a, node_b)]  # fmt: skip
            return counts == [len(older)] * 2

        await wait_until(both_hold_all, 60, what="both archives to hold every message")
        metrics = await scrape(node_b.metrics_url)
        received = metrics['chinwag_sync_messages_total{direction="received"}']
        sent = metrics['chinwag_sync_messages_total{direction="sent"}']
        assert (received, sent) == (len(older[0::2]), len(older[1::2]))
        assert metrics['chinwag_sync_sessions_total{outcome="completed"}'] >= 1
    finally:
        await chinwag.close()
    for name in names:
        archive = archive_backend.open(name=name)
        assert archived_hashes(archive) == {r.message_hash for r in older}
        archive.close()
