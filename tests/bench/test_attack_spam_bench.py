"""The contact-request spam benchmark runs end to end in its quick mode (no assertions on
time: that every contact message is shown, in order, and every request not kept is counted
as dropped, is what it shows)."""

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
    results = {r["bench"]: r for r in map(json.loads, out.splitlines())}
    latency = results["contact_latency_under_spam"]
    assert latency["spam_published"] == latency["spam_requests"] == 60
    assert latency["displayed"] == latency["contact_messages"] == 10
    assert latency["displayed_in_order"] is True
    assert latency["requests_dropped"] == 60 - latency["requests_held"] > 0
    assert {"p50_s", "p99_s", "max_s"} <= set(latency)
    cost = results["contact_request_cost_by_backlog"]
    assert cost["backlog"] == [0, 50] and len(cost["ms_per_request"]) == 2
