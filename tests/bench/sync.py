"""Sync benchmark: a store node that missed part of the window catches up from a peer.

    python tests/bench/sync.py                       # 10 msg/s, 2 h window, 1 h gap
    python tests/bench/sync.py --rate 1 --window-minutes 6 --gap-minutes 3   # smoke run

Two real store nodes (ServiceNodes on loopback, SQLite archives). Node A holds the whole
window at `rate` messages per second (200-byte payloads); node B holds the same messages
except a gap of `gap` minutes in the middle (it was down). B then connects to A and both sync
until their archives hold the same set. Measured: the bytes that crossed the wire (the
reconciliation payloads and the transferred messages, both directions, from the nodes' own
counters) against the bytes of sending the whole window, the reconciliation rounds' share,
and the time from connecting to converged.

Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for path in (REPO, REPO / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import trio  # noqa: E402
from harness.sync import archived_hashes, fill, sync_node  # noqa: E402
from harness.waiting import wait_until  # noqa: E402

from chat.waku.message import WakuMessage, message_hash, now_ns  # noqa: E402
from chat.waku.sync.service import SyncOptions  # noqa: E402
from storage.archive import ArchiveRecord  # noqa: E402

SHARD0 = "/waku/2/rs/42/0"
CONTENT = "/chinwag/1/sync-bench/proto"
PAYLOAD = 200


def window_records(rate: float, minutes: float, end_ns: int) -> list[ArchiveRecord]:
    count = int(rate * minutes * 60)
    spacing = int(1e9 / rate)
    records = []
    for index in range(count):
        payload = f"{index:08d}".encode().ljust(PAYLOAD, b".")
        message = WakuMessage(payload, CONTENT, timestamp=end_ns - (count - index) * spacing)
        records.append(
            ArchiveRecord(
                message_hash(SHARD0, message), SHARD0, CONTENT, message.timestamp, message.encode()
            )
        )
    return records


async def run(
    rate: float, window_minutes: float, gap_minutes: float, work: Path
) -> dict[str, object]:
    end = now_ns() - 2 * 10**9
    records = window_records(rate, window_minutes, end)
    gap_count = int(rate * gap_minutes * 60)
    first = (len(records) - gap_count) // 2
    missing = records[first : first + gap_count]
    present = records[:first] + records[first + gap_count :]
    options = SyncOptions(interval=3600.0, window=window_minutes * 60 + 30, offset=0.5)
    node_a = sync_node(work / "a.sqlite", options)
    node_b = sync_node(work / "b.sqlite", options)
    fill(node_a.archive, records)
    fill(node_b.archive, present)
    whole_window = sum(len(r.message) + len(r.pubsub_topic) + 6 for r in records)

    async with node_a.run(), node_b.run():
        sync_a, sync_b = node_a.sync, node_b.sync
        assert sync_a is not None and sync_b is not None
        started = time.perf_counter()
        await node_b.node.host.dial(node_a.node.full_multiaddrs()[0])
        # Polled from the counter, not the archive: reading the archive competes with its writes.
        await wait_until(lambda: sync_b.counters["items_received"] >= len(missing), 600,
                         what="node B to receive the gap")  # fmt: skip
        took = time.perf_counter() - started
        held = await trio.to_thread.run_sync(archived_hashes, node_b.archive)
        assert held == {r.message_hash for r in records}, "B does not hold the window"
        exchanged = sync_a.counters["bytes_sent"] + sync_b.counters["bytes_sent"]
        reconciliation = (
            sync_a.counters["reconciliation_bytes_sent"]
            + sync_b.counters["reconciliation_bytes_sent"]
        )
        return {
            "bench": "sync_gap",
            "rate_msg_s": rate,
            "window_messages": len(records),
            "gap_messages": len(missing),
            "messages_transferred": sync_a.counters["items_sent"] + sync_b.counters["items_sent"],
            "bytes_exchanged": exchanged,
            "reconciliation_bytes": reconciliation,
            "whole_window_bytes": whole_window,
            "ratio_to_whole_window": round(exchanged / whole_window, 4),
            "converge_s": round(took, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second")
    parser.add_argument("--window-minutes", type=float, default=120.0)
    parser.add_argument("--gap-minutes", type=float, default=60.0)
    parser.add_argument("--dir", type=Path, help="where the archives go (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.dir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        result = trio.run(run, args.rate, args.window_minutes, args.gap_minutes, work)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
