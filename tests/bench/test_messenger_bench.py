"""The messenger benchmark runs end to end in its quick mode (no assertions on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("messenger.py")


@pytest.mark.bench
def test_messenger_benchmark_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    lines = {r["bench"]: r for r in map(json.loads, out.splitlines())}
    latency = lines["messenger_send_to_displayed"]
    assert latency["displayed"] == latency["messages"] == 50
    wire = lines["messenger_bytes_on_wire"]
    assert wire["sds_overhead_bytes_ours"] < 1024 < wire["sds_overhead_bytes_js_defaults"]
