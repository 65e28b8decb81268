"""`chinwag lab run` with every process in its own network namespace: two clients and a
service node, a few 1:1 messages, the node killed and restarted (the clients must find it
again through their proxies). Every message arrives once, the report says the run was
isolated, a client cannot reach the other client's API (only its own links to the lab's
proxies), and no lab namespace outlives the run; a crashed run's namespaces are deleted by
the next. Skipped where namespaces are not permitted (not root, no iproute2): CI runs as
root."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from chat.lab.live_processes import ClientFlags, LabCommands, Placement
from chat.lab.live_report import build_report
from chat.lab.live_run import LiveRun, choose_isolation
from chat.lab.live_scenario import LiveScenario, parse_live_scenario
from chat.lab.netns import (
    LAB_PREFIX,
    lab_namespaces,
    lab_namespaces_problem,
    remove_stale_lab_namespaces,
    run,
)

SCENARIO = """
name = "ci-netns"
duration = 4.0
settle = 30.0

[network]
clients = 2
isolation = "netns"
peer_exchange = false

[traffic]
direct_interval = 1.0
direct_size = 80

[[faults]]
kind = "kill"
target = "node0"
at = 1.5
duration = 1.5
"""

PROBLEM = lab_namespaces_problem()
needs_namespaces = pytest.mark.skipif(PROBLEM is not None, reason=str(PROBLEM))

REACH = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
except OSError as exc:
    print("OSError", exc.errno, file=sys.stderr)
    print("OSError")
else:
    print("reached")
"""


async def reach_from(namespace: str, host: str, port: int) -> str:
    """ "reached", or the error a connection from inside `namespace` ended with."""
    done = await trio.run_process(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", REACH, host, str(port)],
        capture_stdout=True, capture_stderr=True, check=False,
    )  # fmt: skip
    return (done.stdout or done.stderr).decode().strip()


async def run_and_probe(
    scenario: LiveScenario, data_dir: Path
) -> tuple[dict[str, Any], dict[str, str]]:
    """run_live's steps, with the reachability probes between the start and the traffic."""
    run = LiveRun(scenario, data_dir)
    probes: dict[str, str] = {}
    try:
        await run.isolate()
        async with trio.open_nursery() as nursery:
            run.nursery = nursery
            await run.start(nursery)
            assert run.cells is not None
            inside = run.cells.cells["client0"].name
            other_api = httpx.URL(run.clients[1].api_url)
            probes["other client's API"] = await reach_from(
                inside, other_api.host, other_api.port or 80
            )
            own_proxy = run.proxies[(0, 0)]
            probes["own proxy"] = await reach_from(inside, own_proxy.listen_host, own_proxy.port)
            other_proxy = run.proxies[(1, 0)]
            probes["other client's proxy"] = await reach_from(
                inside, other_proxy.listen_host, other_proxy.port
            )
            node, metrics = run.nodes[0], httpx.URL(run.nodes[0].metrics_url)
            probes["service node"] = await reach_from(inside, node.host, node.port)
            probes["service node's metrics"] = await reach_from(inside, metrics.host,
                                                                metrics.port or 80)  # fmt: skip
            await run.run_traffic()
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            try:
                await run.close()
            finally:
                await run.close_cells()
    return build_report(run, 0.0), probes


@pytest.mark.slow
@needs_namespaces
def test_each_process_in_its_own_namespace(tmp_path: Path) -> None:
    scenario = parse_live_scenario(SCENARIO)
    before = set(lab_namespaces())
    (tmp_path / "lab").mkdir()
    report, probes = trio.run(run_and_probe, scenario, tmp_path / "lab")
    assert report["environment"]["isolation"].startswith("netns"), report["environment"]
    # The client reaches its own proxy and nothing else: not the other client's API, not the
    # other client's proxy, not the service node around the proxy (its address leads to the
    # proxy; anything else to it, such as its metrics port, is refused).
    assert probes == {
        "other client's API": "OSError",
        "own proxy": "reached",
        "other client's proxy": "OSError",
        "service node": "reached",
        "service node's metrics": "OSError",
    }, probes
    messages = report["messages"]
    assert messages["messages_sent"] >= 3, messages
    assert messages["fates"]["delivered"] == messages["messages_sent"], messages["fates"]
    assert messages["duplicated"] == 0
    assert report["faults"][0]["recovered"], report["faults"]
    assert set(lab_namespaces()) <= before  # every namespace of the run is gone


def test_a_scenario_may_ask_for_loopback() -> None:
    use_netns, why = choose_isolation("loopback")
    assert not use_netns and why == "loopback (the scenario asks for it)"


def test_commands_in_a_namespace_listen_on_its_link(tmp_path: Path) -> None:
    commands = LabCommands(tmp_path)
    commands.placements["client0"] = Placement(("ip", "netns", "exec", "cwlab-1-x-client0"),
                                               "198.18.7.6")  # fmt: skip
    commands.placements["node0"] = Placement(("ip", "netns", "exec", "cwlab-1-x-node0"),
                                             "198.18.7.2")  # fmt: skip
    client = commands.command_for_client("client0", ["/ip4/198.18.7.5/tcp/9/p2p/x"], ClientFlags())
    assert client[:4] == ["ip", "netns", "exec", "cwlab-1-x-client0"]
    assert client[client.index("--api") + 1] == "198.18.7.6:0"
    node = commands.node_process("node0", 4000, False).command
    assert node[:4] == ["ip", "netns", "exec", "cwlab-1-x-node0"]
    assert node[node.index("--listen") + 1] == "/ip4/198.18.7.2/tcp/4000"
    assert node[node.index("--metrics") + 1] == "198.18.7.2:0"
    loopback = commands.command_for_client("client1", [], ClientFlags())  # no placement
    assert loopback[0] == sys.executable and "127.0.0.1:0" in loopback


@needs_namespaces
def test_a_crashed_runs_namespaces_are_deleted_by_the_next_run() -> None:
    # A process id that no process has now: a short-lived child's, after it ended.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    crashed = f"{LAB_PREFIX}{child.pid}-abc123-client0"
    alive = f"{LAB_PREFIX}{os.getpid()}-abc123-client0"
    for name in (crashed, alive):
        run("ip", "netns", "add", name, check=True)
    try:
        removed = remove_stale_lab_namespaces()
        assert crashed in removed and alive not in removed
        assert crashed not in lab_namespaces() and alive in lab_namespaces()
    finally:
        for name in (crashed, alive):
            run("ip", "netns", "del", name)


@pytest.mark.slow
@needs_namespaces
def test_a_run_stopped_by_sigterm_deletes_its_namespaces(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    lab = subprocess.Popen(
        [sys.executable, "-m", "chat.cli", "lab", "run", str(scenario), "--workdir",
         str(tmp_path / "lab")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert lab.stderr is not None
        for line in lab.stderr:  # progress: the namespaces exist once the profiles are made
            if "creating profiles" in line:
                break
        ours = [name for name in lab_namespaces() if name.startswith(f"{LAB_PREFIX}{lab.pid}-")]
        assert len(ours) == 3, ours  # node0, client0, client1
        lab.send_signal(signal.SIGTERM)
        _, err = lab.communicate(timeout=60)
    finally:
        lab.kill()
    assert lab.returncode != 0 and "stopped by SIGTERM" in err, err[-2000:]
    assert not [name for name in lab_namespaces() if name.startswith(f"{LAB_PREFIX}{lab.pid}-")]
