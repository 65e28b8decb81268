"""`chinwag lab run` end to end: a service node and three real `chinwag serve` clients on
loopback, 30 % of every client's relay frames lost, the service node killed and restarted.
Every message arrives once; then the same network where the node never comes back and the
clients know no other peer: the report says which messages were lost, instead of passing.

The clients run with `timer_scale = 0.1` (serve --timer-scale): their re-sends come after
6 s instead of 60 s, so a lost frame is recovered within the test's minute."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chat.lab.live_run import run_live
from chat.lab.live_scenario import parse_live_scenario

SURVIVABLE = """
name = "ci-loss-restart"
duration = 10.0
settle = 60.0
late_after = 30.0

[network]
clients = 3
loss = 0.3
timer_scale = 0.1
isolation = "loopback"  # test_lab_netns.py runs the lab in network namespaces

[traffic]
direct_interval = 1.0
direct_size = 120

[[faults]]
kind = "kill"
target = "node0"
at = 3.0
duration = 3.0
"""

UNSURVIVABLE = """
name = "ci-node-gone"
duration = 8.0
settle = 12.0

[network]
clients = 3
loss = 0.3
timer_scale = 0.1
isolation = "loopback"  # test_lab_netns.py runs the lab in network namespaces
peer_exchange = false

[traffic]
direct_interval = 1.0

[[faults]]
kind = "kill"
target = "node0"
at = 2.0
"""

pytestmark = pytest.mark.slow


def test_loss_and_a_node_restart_every_message_arrives_once(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SURVIVABLE)
    report_path, html_path = tmp_path / "report.json", tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "chat.cli", "lab", "run", str(scenario), "--workdir",
         str(tmp_path / "lab"), "--output", str(report_path), "--html", str(html_path)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    messages = report["messages"]
    # 10 writes are planned; none may be refused or go unanswered (the failures name why).
    assert messages["messages_sent"] >= 8, (
        messages["failed_sends"][:2],
        report["skipped_sends"],
        report["environment"]["notes"],
    )
    assert messages["send_answer_s"]["count"] == messages["messages_sent"]
    assert messages["fates"]["lost"] == 0, messages["lost"]
    assert (
        messages["fates"]["delivered"] + messages["fates"]["late"]
        == messages["expected_deliveries"]
    )
    assert messages["duplicated"] == 0 and messages["ran_ahead_of_evidence"] == []
    assert report["all_delivered_once"] is True
    [fault] = report["faults"]
    assert fault["kind"] == "kill" and fault["recovered"] is True
    assert report["restarts"] == {"node0": 1}
    assert [(e["kind"], e["starts"]) for e in report["timeline"]] == [
        ("kill", True),
        ("kill", False),
    ]
    bandwidth = report["bandwidth"]
    assert all(bandwidth[f"client{i}"]["link_bytes"]["node0"] > 0 for i in range(3))
    assert all(bandwidth[f"client{i}"]["wire_bytes_out"] > 0 for i in range(3))
    # Read before the kill and at the end (the counters restart with the node).
    assert bandwidth["node0"]["readings"] == 2 and bandwidth["node0"]["wire_bytes_in"] > 0
    assert "every message delivered once" in done.stdout
    html = html_path.read_text()
    assert html.startswith("<!doctype html>") and "ci-loss-restart" in html


async def test_a_node_that_never_returns_is_reported_as_losses(tmp_path: Path) -> None:
    report = await run_live(parse_live_scenario(UNSURVIVABLE), tmp_path / "lab", print)
    messages = report["messages"]
    assert report["all_delivered_once"] is False
    assert messages["fates"]["lost"] > 0
    # Everything sent once the node was gone had nowhere to go.
    late_sends = [m for m in messages["lost"] if m["sent_at"] > 2.5]
    assert late_sends, messages["lost"]
    assert messages["ran_ahead_of_evidence"] == []
    [fault] = report["faults"]
    assert fault["recovered"] is False and fault["duration"] is None
    # The premise: with the node gone and no peer exchange, no client has a peer left.
    assert [h["peers"] for h in report["health_at_end"].values()] == [0, 0, 0]
