"""The community benchmark runs end to end in its quick mode: every line is there with its
fields and sane values (never an assertion on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("communities.py")


@pytest.mark.bench
@pytest.mark.slow
def test_communities_benchmark_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout  # fmt: skip
    lines = {record["bench"]: record for record in map(json.loads, out.splitlines())}
    assert set(lines) == {
        "communities_join",
        "communities_send_to_displayed",
        "communities_bytes",
        "communities_cpu",
    }
    shown = lines["communities_send_to_displayed"]
    assert shown["messages"] == 6 and 0 < shown["p50_ms"] <= shown["p99_ms"] <= shown["max_ms"]
    assert lines["communities_bytes"]["relay_bytes_per_message_per_member"] > 0
    cpu = lines["communities_cpu"]
    assert all(cpu[k] > 0 for k in ("seal_us", "open_us", "shard_sign_us",
                                    "validate_protected_us", "validate_open_us"))  # fmt: skip
