"""The bandwidth benchmark runs end to end in its quick mode (no assertions on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("bandwidth.py")


@pytest.mark.bench
def test_bandwidth_benchmark_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        check=True, capture_output=True, text=True, timeout=180,
    ).stdout  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines()]
    costs = {k: v for r in rows if r["metric"] == "cost" for k, v in r.items() if k.endswith("_us")}
    assert {"count_us", "relay_received_publish_1k_us", "stream_proxy_overhead_us"} <= set(costs)
    (run,) = [r for r in rows if r["metric"] == "chat_run"]
    shares = [r for r in rows if r["metric"] == "share"]
    for node in ("alice", "bob", "service"):
        protocols = [r for r in shares if r["node"] == node and "protocol" in r]
        # Protocols and framing add up to the wire, and relay carries most of a chat.
        assert sum(r["share_of_wire_pct"] for r in protocols) == pytest.approx(100, abs=0.1)
        assert max(protocols, key=lambda r: r["share_of_wire_pct"])["protocol"] == "relay"
    alice_chat = next(r for r in shares if r["node"] == "alice" and r.get("relay_kind") == "chat")
    assert alice_chat["messages_out"] == run["messages"]
    assert alice_chat["bytes_out"] > run["messages"] * run["text_bytes"]
    bob_sync = next(r for r in shares if r["node"] == "bob" and r.get("relay_kind") == "sync")
    assert bob_sync["messages_out"] > 0  # the receipts
