"""The contact-request spam benchmark runs end to end in its quick mode (no assertions on
time: that every contact message is shown, in order, is what it shows)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("attack_spam.py")


@pytest.mark.bench
@pytest.mark.slow
def test_contact_latency_under_spam_benchmark_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    [result] = [json.loads(line) for line in out.splitlines()]
    assert result["bench"] == "contact_latency_under_spam"
    assert result["spam_published"] == result["spam_requests"] == 60
    assert result["displayed"] == result["contact_messages"] == 10
    assert result["displayed_in_order"] is True
    assert {"p50_s", "p99_s", "max_s", "requests_held", "requests_dropped"} <= set(result)
