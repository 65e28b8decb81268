"""The telemetry latency benchmark runs end to end in its quick mode (no assertions on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("telemetry_latency.py")


@pytest.mark.bench
@pytest.mark.slow
def test_telemetry_latency_benchmark_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    runs = {r["mode"]: r for r in rows if r["bench"] == "telemetry_message_latency"}
    assert set(runs) == {"off", "blackholed"}
    for row in runs.values():
        assert row["displayed"] == row["messages"] == 20
    # The collector was unreachable the whole time: uploads hung, every event stayed queued.
    assert runs["blackholed"]["uploads_swallowed"] >= 1
    assert all(queued > 0 for queued in runs["blackholed"]["events_queued"])
    assert runs["off"]["events_queued"] == []
