"""The reconnect benchmark runs end to end in its quick mode (no assertions on time: only on
the shape of the output and that every cut recovered)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("reconnect.py")


@pytest.mark.bench
def test_reconnect_benchmark_smoke() -> None:
    command = [sys.executable, str(SCRIPT), "--cuts", "2", "--outage", "0.5", "--stable", "0",
               "--unreachable", "3"]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    kinds = [line["kind"] for line in lines]
    assert kinds == ["policy", "cut", "cut", "recovery", "unreachable", "done"]
    assert lines[0]["offline_redial_s"] is not None  # the default: short redials offline
    assert lines[3]["cuts"] == 2 and lines[3]["p50_s"] <= lines[3]["p95_s"]
    unreachable = lines[4]
    assert unreachable["dials"] >= 1 and unreachable["dials_per_minute"] > 0
