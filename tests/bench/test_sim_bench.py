"""The relay simulation benchmark runs end to end on tiny networks (no assertions on time:
only on the shape of the output and on what was delivered)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("sim.py")


@pytest.mark.bench
def test_sim_benchmark_smoke() -> None:
    command = [sys.executable, str(SCRIPT), "--nodes", "30", "--nodes", "60"]
    command += ["--duration", "3", "--warmup", "3", "--publish-interval", "0.5"]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [row["nodes"] for row in rows] == [30, 60]
    for row in rows:
        assert row["messages"] == 6
        assert row["delivery_ratio"] >= 0.95
        assert row["frames"] > 0
        assert row["node_seconds_per_wall_s"] > 0 and row["node_seconds_per_cpu_s"] > 0
        assert row["peak_rss_mb"] > 0 and row["peak_rss_per_node_kb"] >= 0


@pytest.mark.bench
def test_messenger_sim_benchmark_smoke() -> None:
    command = [sys.executable, str(SCRIPT), "--clients", "3"]
    command += ["--duration", "3", "--publish-interval", "1"]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    (row,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert row["clients"] == 3 and row["messages"] == 3
    assert row["delivery_ratio"] == 1.0 and row["frames"] > 0
    assert row["client_seconds_per_wall_s"] > 0 and row["client_seconds_per_cpu_s"] > 0
    assert row["peak_rss_mb"] > 0 and row["peak_rss_per_client_kb"] >= 0
