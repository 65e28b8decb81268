"""`chinwag lab run`'s plain parts: the scenario parser (errors name the line), the fault
timeline, the fate ledger, the traffic plan, the link shaper, and the fault proxy on loopback."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from chat.lab.catalog import resolve_live_scenario, shipped_scenarios
from chat.lab.fates import FateLedger, tag_of
from chat.lab.fault_proxy import FaultProxy
from chat.lab.link_shaper import LinkShape, LinkShaper
from chat.lab.live_run import message_text, plan_traffic
from chat.lab.live_scenario import Fault, LiveScenario, Network, Traffic, parse_live_scenario
from chat.lab.scenario import ScenarioError
from chat.lab.timeline import FaultTimeline, expand

GOOD = """\
name = "t"
duration = 10.0

[network]
clients = 3
loss = 0.3

[traffic]
direct_interval = 1.0

[[faults]]
kind = "kill"
target = "node0"
at = 2.0
duration = 3.0

[[faults]]
kind = "latency"
target = "clients"
at = 4.0
duration = 2.0
latency_ms = 500.0
"""


def test_a_good_scenario_parses() -> None:
    scenario = parse_live_scenario(GOOD)
    assert scenario.network.clients == 3 and scenario.network.loss == 0.3
    assert scenario.faults[0] == Fault("kill", "node0", 2.0, 3.0)
    assert scenario.faults[1].latency_ms == 500.0


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        (("clients = 3", "clients = 3\nclinets = 4"), 6, "unknown key 'clinets'"),
        (("loss = 0.3", "loss = 1.5"), 6, "loss must be in [0, 1)"),
        (('target = "node0"', 'target = "node7"'), 13, "target 'node7' is not one of"),
        (("latency_ms = 500.0", 'latency_ms = "slow"'), 22, "latency_ms must be a number"),
        (('kind = "latency"', 'kind = "lightning"'), 18, "kind must be one of"),
        (("duration = 10.0", "duration = 10.0\n["), 3, "line 3"),  # a TOML syntax error
        (("loss = 0.3", 'loss = 0.3\nisolation = "vm"'), 7, "isolation must be one of"),
    ],
)
def test_bad_scenarios_name_the_line(edit: tuple[str, str], line: int, words: str) -> None:
    text = GOOD.replace(*edit, 1)
    with pytest.raises(ScenarioError) as caught:
        parse_live_scenario(text, "bad.toml")
    message = str(caught.value)
    assert words in message
    assert f"line {line}" in message
    assert message.startswith("bad.toml")


def test_a_fault_without_duration_must_be_a_kill() -> None:
    with pytest.raises(ScenarioError, match="a pause fault needs a duration"):
        parse_live_scenario('[[faults]]\nkind = "pause"\ntarget = "client0"\nat = 1.0\n')


def test_every_shipped_scenario_loads_and_lab_list_shows_them() -> None:
    shipped = shipped_scenarios()
    runs = [s.name for s in shipped if s.kind == "run"]
    assert {"status-latency", "status-loss", "status-bandwidth", "status-pause-5s",
            "status-pause-30s", "node-restart", "sleep-wake"} <= set(runs)  # fmt: skip
    assert any(s.kind == "sim" for s in shipped)
    for name in runs:
        assert resolve_live_scenario(name).name == name
    listed = subprocess.run(
        [sys.executable, "-m", "chat.cli", "lab", "list"], capture_output=True, text=True,
        check=True, timeout=60,
    ).stdout  # fmt: skip
    for entry in shipped:
        assert entry.name in listed


def test_an_unknown_scenario_name_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no scenario file or shipped scenario 'nope'"):
        resolve_live_scenario("nope")
    with pytest.raises(ScenarioError, match="cannot read"):
        resolve_live_scenario(str(tmp_path / "missing.toml"))


def test_the_timeline_hands_out_each_step_once_in_order() -> None:
    faults = expand(
        (Fault("kill", "node0", 2.0, 3.0), Fault("pause", "clients", 4.0, 1.0),
         Fault("kill", "client0", 6.0)),
        clients=2,
    )  # fmt: skip
    assert [f.target for f in faults] == ["node0", "client0", "client1", "client0"]
    timeline = FaultTimeline(faults)
    assert timeline.due(1.9) == []
    assert timeline.next_at() == 2.0
    assert [(s.at, s.starts) for s in timeline.due(2.0)] == [(2.0, True)]
    # At 5.0 the kill ends before anything else starts; both pauses started at 4.0.
    steps = timeline.due(5.0)
    assert [(s.at, s.starts, s.fault.target) for s in steps] == [
        (4.0, True, "client0"), (4.0, True, "client1"), (5.0, False, "node0"),
        (5.0, False, "client0"), (5.0, False, "client1"),
    ]  # fmt: skip
    assert timeline.due(5.5) == []
    assert [f.target for f in timeline.active(6.5)] == ["client0"]  # a kill never restored
    assert [(s.at, s.starts) for s in timeline.due(100.0)] == [(6.0, True)]
    assert timeline.next_at() is None


def _ledger() -> FateLedger:
    ledger = FateLedger(late_after=5.0)
    ledger.record_send("d0", "a", "direct", "ab", ["b"], at=100.0)
    ledger.record_send("d1", "a", "direct", "ab", ["b"], at=101.0)
    ledger.record_send("g0", "b", "group", "g", ["a", "c"], at=102.0)
    return ledger


def test_fates_delivered_late_lost_duplicated_and_out_of_order() -> None:
    ledger = _ledger()
    ledger.observe_incoming("b", "ab", [("d1", 101.5), ("d0", 109.0), ("d0", 109.2)])
    ledger.observe_incoming("a", "g", [("g0", 102.4)])
    report = ledger.report()
    assert report["fates"] == {"delivered": 2, "late": 1, "lost": 1}
    assert report["by_chat"]["group"] == {"delivered": 1, "late": 0, "lost": 1}
    assert report["lost"] == [{"message": "g0", "from": "b", "to": "c", "sent_at": 102.0}]
    assert report["duplicated"] == 1  # d0 held twice by b
    assert report["out_of_order"] == 1  # d0 came after d1
    assert report["latency_s"]["count"] == 3 and report["latency_s"]["max"] == 9.0
    assert report["delivery_ratio"] == 0.75


def test_delivered_before_the_recipient_held_it_ran_ahead() -> None:
    ledger = _ledger()
    ledger.observe_acknowledged("d0", ["b"], at=103.0)  # b only holds it from 104.0
    ledger.observe_acknowledged("d1", ["b"], at=103.0)  # held at 101.5: fine
    ledger.observe_acknowledged("g0", ["c"], at=104.0)  # c never holds it
    ledger.observe_incoming("b", "ab", [("d0", 104.0), ("d1", 101.5)])
    ahead = ledger.report()["ran_ahead_of_evidence"]
    assert ahead == [
        {"message": "d0", "recipient": "b", "delivered_shown_at": 3.0, "held_at": 4.0},
        {"message": "g0", "recipient": "c", "delivered_shown_at": 2.0, "held_at": None},
    ]


def test_recovery_after_a_fault() -> None:
    ledger = _ledger()
    ledger.record_send("d2", "a", "direct", "ab", ["b"], at=106.0)
    ledger.observe_incoming("b", "ab", [("d0", 100.2), ("d1", 105.5), ("d2", 106.1)])
    ledger.observe_incoming("a", "g", [("g0", 102.4)])
    # c has not (yet) got g0, sent during a fault on c: not recovered.
    assert ledger.recovery(101.5, 103.0, {"c"}) is None
    ledger.observe_incoming("c", "g", [("g0", 103.5)])
    assert ledger.recovery(101.5, 103.0, {"c"}) == 0.5
    # A fault on a from 100.5 to 103.0: d1 and g0 were sent during it (d1 held at 105.5)
    # and d2 was the first after it (held at 106.1): recovered 3.1 s after the end.
    assert ledger.recovery(100.5, 103.0, {"a"}) == 3.1
    assert ledger.recovery(100.5, None, {"a"}) is None  # never ended


def test_the_traffic_plan_depends_on_the_seed_only() -> None:
    traffic = Traffic(direct_interval=1.0, groups=2, group_interval=3.0)
    scenario = LiveScenario(duration=10.0, network=Network(clients=4), traffic=traffic)
    plan = plan_traffic(scenario)
    assert plan == plan_traffic(scenario)
    assert sum(p.chat == "direct" for p in plan) == 10
    assert sum(p.chat == "group" for p in plan) == 3  # at 1.5, 4.5 and 7.5 s
    assert all(p.sender != p.peer for p in plan if p.chat == "direct")
    assert [p.at for p in plan] == sorted(p.at for p in plan)
    text = message_text("d7", 100)
    assert len(text) == 100 and tag_of(text) == "d7"


def test_the_shaper_keeps_order_adds_latency_and_caps_the_rate() -> None:
    shaper = LinkShaper(LinkShape(latency=1.0, jitter=0.1), random.Random(1))
    releases = [shaper.release_at(100, now) for now in (0.0, 0.01, 0.02, 0.03)]
    assert releases == sorted(releases)  # jitter never reorders a TCP stream
    assert all(0.9 <= release - now <= 1.1 + 0.03
               for release, now in zip(releases, (0.0, 0.01, 0.02, 0.03), strict=True))  # fmt: skip
    capped = LinkShaper(LinkShape(rate_bps=1000))
    # 1 kbit/s: 125 bytes take 1 s; three chunks read at once leave one second apart.
    assert [capped.release_at(125, 0.0) for _ in range(3)] == [1.0, 2.0, 3.0]
    assert capped.release_at(125, 10.0) == 11.0  # idle link: no backlog
    assert capped.chunk_limit() == 64
    assert LinkShaper().release_at(10, 5.0) == 5.0


async def _echo_server(
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    async def echo(stream: trio.SocketStream) -> None:
        async with stream:
            while data := await stream.receive_some(65536):
                await stream.send_all(data)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(echo, listeners, handler_nursery=nursery)


async def _exchange(stream: trio.SocketStream, data: bytes) -> bytes:
    await stream.send_all(data)
    got = b""
    while len(got) < len(data):
        chunk = await stream.receive_some(65536)
        assert chunk, "the proxy closed the connection"
        got += chunk
    return got


async def test_the_fault_proxy_relays_delays_and_cuts() -> None:
    async with trio.open_nursery() as nursery:
        echo_port = await nursery.start(_echo_server)
        proxy = FaultProxy(echo_port, rng=random.Random(1))
        port = await nursery.start(proxy.run)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        payload = bytes(range(256)) * 400
        assert await _exchange(stream, payload) == payload
        # A 0.3 s delay each way: nothing is back after 0.3 s, everything after.
        proxy.set_shape(LinkShape(latency=0.3))
        await stream.send_all(b"ping")
        with trio.move_on_after(0.3):
            early = await stream.receive_some(10)
            pytest.fail(f"came back before its delay: {early!r}")
        assert await stream.receive_some(10) == b"ping"
        proxy.set_shape(LinkShape())
        # A cut closes the connection and refuses new ones until it is restored.
        proxy.set_cut(True)
        with trio.fail_after(5):
            assert await stream.receive_some(10) == b""
        refused = await trio.open_tcp_stream("127.0.0.1", port)
        with trio.fail_after(5):
            assert await refused.receive_some(10) == b""
        proxy.set_cut(False)
        again = await trio.open_tcp_stream("127.0.0.1", port)
        assert await _exchange(again, b"back") == b"back"
        assert proxy.connections == 2
        assert proxy.bytes_relayed >= 2 * len(payload)
        nursery.cancel_scope.cancel()


def test_timer_scale_shortens_the_resend_timers_only() -> None:
    from chat.lab.timers import scaled_timers
    from chat.messenger import MessengerConfig

    config = MessengerConfig()
    scaled = scaled_timers(config, 0.1)
    assert scaled.retry.ack_timeout == pytest.approx(config.retry.ack_timeout / 10)
    assert scaled.retry.first_delay == pytest.approx(config.retry.first_delay / 10)
    assert scaled.requests.first_resend == pytest.approx(config.requests.first_resend / 10)
    assert scaled.invites.first_resend == pytest.approx(config.invites.first_resend / 10)
    assert scaled.store_checks.scan_every == pytest.approx(config.store_checks.scan_every / 10)
    assert scaled.retry.max_resends == config.retry.max_resends  # budgets unchanged
    assert scaled_timers(config, 1.0) is config
    with pytest.raises(ValueError, match="timer scale"):
        scaled_timers(config, 0.0)


def test_lab_run_with_a_bad_file_says_which_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n\n[network]\nclients = 1\n')
    done = subprocess.run(
        [sys.executable, "-m", "chat.cli", "lab", "run", str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"{bad}, line 4: clients must be 2..32" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_report_tells_losses_and_state_ahead_of_evidence(tmp_path: Path) -> None:
    from chat.lab.live_report import build_report, describe_live, render_live_html
    from chat.lab.live_run import LiveRun

    scenario = LiveScenario(
        name="r", faults=(Fault("kill", "node0", 1.0), Fault("pause", "client1", 2.0, 1.0))
    )
    run = LiveRun(scenario, tmp_path)
    run.origin = 1000.0
    run.ledger.record_send("d0", "client0", "direct", "c01", ["client1"], at=1000.5)
    run.ledger.record_send("d1", "client0", "direct", "c01", ["client1"], at=1002.5)
    run.ledger.observe_incoming("client1", "c01", [("d0", 1000.7)])
    run.ledger.observe_acknowledged("d1", ["client1"], at=1003.0)  # never held: ran ahead
    report = build_report(run, setup_seconds=12.0)
    assert report["all_delivered_once"] is False
    assert report["messages"]["lost"] == [
        {"message": "d1", "from": "client0", "to": "client1", "sent_at": 2.5}
    ]
    kill, pause = report["faults"]
    assert kill["recovered"] is False and kill["duration"] is None
    assert pause["recovered"] is False  # d1, sent during the pause, never arrived
    text = describe_live(report)
    assert "1 delivered, 0 late, 1 lost" in text and "never recovered" in text
    assert "1 'delivered' shown before the recipient held it" in text
    html = render_live_html(report)
    assert "<td>d1</td><td>client1</td>" in html
    assert "Content-Security-Policy" in html and "<script" not in html
