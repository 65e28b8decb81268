"""The protected-shard benchmark runs end to end in a tiny mode (no assertions on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("protected_shard.py")


@pytest.mark.bench
def test_protected_shard_benchmark_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--messages", "50", "--runs", "2"],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines()]
    verdicts = {(r["shard"], r["verdict"]) for r in rows if r["metric"] == "validate_us"}
    assert verdicts == {
        ("open", "accept"),
        ("protected", "accept"),
        ("protected", "signature_length"),
        ("protected", "signature_mismatch"),
        ("protected", "signed_timestamp_out_of_window"),
    }
    assert all(r["value"] > 0 for r in rows if "value" in r)
    (summary,) = [r for r in rows if r["metric"] == "summary"]
    assert summary["messages_per_cpu_second_protected"] > 0
