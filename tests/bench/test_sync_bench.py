"""The sync benchmark runs end to end in a tiny mode (no assertions on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("sync.py")


@pytest.mark.bench
def test_sync_benchmark_smoke(tmp_path: Path) -> None:
    command = [sys.executable, str(SCRIPT), "--rate", "1", "--window-minutes", "6",
               "--gap-minutes", "3", "--dir", str(tmp_path)]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120).stdout
    (result,) = [json.loads(line) for line in out.splitlines()]
    assert result["window_messages"] == 360 and result["gap_messages"] == 180
    # Exactly the gap was transferred, and less than the whole window crossed the wire.
    assert result["messages_transferred"] == 180
    assert 0 < result["reconciliation_bytes"] < result["bytes_exchanged"]
    assert result["bytes_exchanged"] < result["whole_window_bytes"]
    assert result["converge_s"] > 0
