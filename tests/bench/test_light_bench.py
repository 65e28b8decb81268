"""The light mode benchmark runs end to end in its quick mode (no assertions on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("light.py")


@pytest.mark.bench
@pytest.mark.slow
def test_light_benchmark_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        check=True, capture_output=True, text=True, timeout=240,
    ).stdout  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines()]
    idle = {r["mode"]: r for r in rows if r["metric"] == "idle_bytes"}
    assert idle["relay"]["other_messages"] > 0
    # Other people's messages reach a relay client, not a light one.
    assert idle["light"]["bytes_in"] < idle["relay"]["bytes_in"]
    paths = {r["path"]: r for r in rows if r["metric"] == "latency"}
    assert set(paths) == {"relay->light", "light->relay", "relay->relay"}
    assert all(r["shown"] == r["messages"] for r in paths.values())
    (recovery,) = [r for r in rows if r["metric"] == "recovery"]
    assert recovery["failovers"] >= 1
