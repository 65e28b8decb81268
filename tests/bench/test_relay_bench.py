"""The relay benchmark runs end to end with small counts, for every implementation available
(no assertions on time: only on what arrived and on the shape of the output)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("relay.py")
JS_STACK = Path(__file__).parents[1] / "interop" / "gossipsub14"
KEYS = {
    "impl",
    "sent",
    "delivered",
    "drops_counted",
    "throughput_msgs_per_s",
    "p50_ms",
    "p99_ms",
    "cpu_ms_per_received",
    "cpu_ms_per_relayed",
    "peak_rss_mb",
}


def _implementations() -> list[str]:
    impls = ["chinwag", "py-libp2p"]
    if shutil.which("node") and (JS_STACK / "node_modules").is_dir():
        impls.append("js-libp2p")
    return impls


@pytest.mark.bench
def test_relay_benchmark_smoke() -> None:
    impls = _implementations()
    command = [sys.executable, str(SCRIPT), "--burst", "200", "--paced", "100"]
    for impl in impls:
        command += ["--impl", impl]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=90).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    results = {r["impl"]: r for r in lines[:-1]}
    assert list(results) == impls
    for name, r in results.items():
        assert r.keys() >= KEYS, name
        assert r["sent"] == 200
        assert r["delivered"] > 0, name
        assert r["paced_delivered"] > 0, name
        assert r["cpu_ms_per_received"] is not None and r["cpu_ms_per_received"] > 0, name
    ours = results["chinwag"]
    assert ours["delivered"] == ours["sent"]
    assert ours["paced_delivered"] == ours["paced_sent"] == 100
    assert ours["drops_counted"] == 0 and ours["paced_drops_counted"] == 0
    assert ours["middle_relayed"] == 200  # in a line, the middle forwards each message once
    summary = lines[-1]["summary"]
    assert summary["chinwag_delivered_all"] is True
    assert "ours/py-libp2p" in summary
    if "js-libp2p" in results:
        assert set(summary["ours/js-libp2p"]) >= {"throughput_msgs_per_s", "cpu_ms_per_relayed"}
