"""The telemetry collector benchmark runs end to end in a tiny mode (no assertions on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("telemetry.py")


@pytest.mark.bench
@pytest.mark.slow
def test_telemetry_benchmark_smoke(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--ingest-events", "3000", "--report-events", "3000",
         "--record-events", "2000",
         "--dir", str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines()]
    dbs = {r["db"] for r in rows if "db" in r and r["metric"] != "skipped"}
    assert {r["call"] for r in rows if r["metric"] == "record_us"} >= {"Recorder.record"}
    assert "sqlite" in dbs
    for row in rows:
        if row["metric"] == "ingest_http":
            assert row["events"] >= 2500 and row["events_per_s"] > 0
        if row["metric"] in ("record_us", "persist_us"):
            assert row["events"] >= 2000 and row["us_per_event"] > 0
        if row["metric"] == "report":
            assert row["events"] >= 2500 and row["pairs"] > 0
            assert 0.9 < row["eventual_delivery_known"] <= 1.0
