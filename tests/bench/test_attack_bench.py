"""The attack benchmark runs end to end in its quick mode (no assertions on time: only on the
shape of the output and that the legitimate peer got through)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("attack.py")


@pytest.mark.bench
@pytest.mark.slow
def test_attack_benchmark_smoke() -> None:
    command = [sys.executable, str(SCRIPT), "--quick"]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=480).stdout
    sections = {line["section"]: line for line in map(json.loads, out.splitlines())}
    assert list(sections) == [
        "held_connections",
        "held_open_connections",
        "store_memory",
        "store_slow_readers",
        "contact_spam",
        "request_cost",
    ]

    held = sections["held_connections"]
    assert held["baseline"]["ok"] == held["baseline"]["dials"] >= 1
    assert held["under_attack"]["ok"] == held["under_attack"]["dials"]
    assert held["attacker"]["opened"] >= held["held"]
    assert any(k.startswith("chinwag_inbound_connections_total") for k in held["node_counters"])

    held_open = sections["held_open_connections"]
    for series in ("baseline", "under_attack"):
        assert held_open[series]["connected_after_1s"] == held_open[series]["dials"] >= 1
    assert held_open["newcomer_connected_after_5s"] is True
    assert held_open["attacker"]["dials"] >= held_open["sources"] * held_open["per_source"]
    counters = held_open["node_counters"]
    assert counters['chinwag_inbound_connections_total{outcome="evicted_open_full"}'] >= 1

    memory = sections["store_memory"]
    assert memory["messages_stored"] == memory["messages_pushed"] > 0
    assert sum(memory["statuses"].values()) == memory["parallel_queries"]
    assert memory["rss_idle_mb"] <= memory["rss_peak_mb"]
    for key in ("rss_peak_over_idle_mb", "rss_after_1s_mb", "payload_mb_returned", "burst_s"):
        assert key in memory

    readers = sections["store_slow_readers"]
    assert readers["honest_status"] == "200" and readers["honest_messages"] > 0
    assert {"honest_s", "attacker_queries_held_s"} <= set(readers)

    latency = sections["contact_spam"]
    assert latency["spam_published"] == latency["spam_requests"] == 60
    assert latency["displayed"] == latency["contact_messages"] == 10
    assert latency["displayed_in_order"] is True
    assert latency["requests_dropped"] == 60 - latency["requests_held"] > 0
    assert {"p50_s", "p99_s", "max_s"} <= set(latency)

    cost = sections["request_cost"]
    assert cost["backlog"] == [0, 50] and len(cost["ms_per_request"]) == 2
