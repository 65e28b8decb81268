"""The API and metrics attack benchmark runs end to end in a tiny mode (no assertions on
time: that honest requests get answers at all is what it shows)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("api_attack.py")


@pytest.mark.bench
@pytest.mark.slow
def test_api_attack_benchmark_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--attackers", "0", "40", "--requests", "5"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(r["server"], r["attackers"]) for r in lines] == [
        ("api", 0),
        ("api", 40),
        ("metrics", 0),
        ("metrics", 40),
    ]
    for r in lines:
        assert {"requests", "failures", "p50_ms", "p95_ms", "max_ms", "shed", "refused"} <= set(r)
        assert r["requests"] == 5
    assert lines[3]["shed"] > 0  # 40 attackers wanted more than the 8 slots of one address
