"""`chinwag lab run`'s light clients, clock skew and community traffic, without processes:
the scenario keys and their errors (naming the line), the command lines the runner starts,
the traffic plan, the skewed clock reaching the client's relay validator, the fate ledger's
send-order check and the report's account of a skew."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chat.lab.fates import FateLedger
from chat.lab.live_processes import ClientFlags, LabCommands
from chat.lab.live_run import LiveRun, plan_traffic, true_receipt
from chat.lab.live_scenario import Fault, LiveScenario, Network, Traffic, parse_live_scenario
from chat.lab.scenario import ScenarioError
from chat.lab.timers import SkewedClock, skewed_clock
from chat.waku.message import WakuMessage

MIXED = """\
name = "m"
duration = 20.0

[network]
clients = 3
light_clients = ["client2"]

[traffic]
community_interval = 2.0
community_size = 64

[[faults]]
kind = "clock_skew"
target = "client1"
at = 0.0
offset = 120.0

[[faults]]
kind = "clock_skew"
target = "client2"
at = 5.0
duration = 5.0
offset = -400.0
"""


def test_light_clients_clock_skews_and_community_traffic_parse() -> None:
    scenario = parse_live_scenario(MIXED)
    net = scenario.network
    assert net.light_clients == ("client2",)
    assert [net.is_light(i) for i in range(3)] == [False, False, True]
    assert scenario.traffic.community_interval == 2.0
    assert scenario.faults[0] == Fault("clock_skew", "client1", 0.0, None, offset=120.0)
    assert scenario.faults[1].end == 10.0 and scenario.faults[1].offset == -400.0
    everyone = parse_live_scenario('[network]\nmode = "light"\nservice_nodes = 2\n').network
    assert all(everyone.is_light(i) for i in range(everyone.clients))
    with pytest.raises(ScenarioError, match="line 2: with light clients alone"):
        parse_live_scenario('[network]\nmode = "light"\n')


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        (('["client2"]', '["client9"]'), 6, "light_clients: 'client9' is not one of"),
        (('["client2"]', '"client2"'), 6, "light_clients must be a list of strings"),
        (("clients = 3", "clients = 3\nloss = 0.2"), 6, "light clients send no relay frames"),
        (("offset = 120.0", "offset = 0.0"), 16, "clock_skew needs an offset"),
        (('target = "client1"', 'target = "node0"'), 14, "clock_skew acts on clients"),
        (("community_size = 64", "community_size = 8"), 10, "community_size must be 16.."),
        (("community_interval = 2.0", "community_interval = -1.0"), 9, "cannot be negative"),
    ],
)
def test_bad_modes_skews_and_community_keys_name_the_line(
    edit: tuple[str, str], line: int, words: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_live_scenario(MIXED.replace(*edit, 1), "bad.toml")
    assert words in str(caught.value)
    assert f"bad.toml, line {line}:" in str(caught.value)


def test_a_pause_still_needs_a_duration_a_skew_does_not() -> None:
    text = '[[faults]]\nkind = "{}"\ntarget = "client0"\nat = 1.0\noffset = 30.0\n'
    assert parse_live_scenario(text.format("clock_skew")).faults[0].end is None
    with pytest.raises(ScenarioError, match="a pause fault needs a duration"):
        parse_live_scenario(text.format("pause").replace("offset = 30.0\n", ""))


def test_the_commands_start_light_skewed_clients_and_nodes_that_serve_them(
    tmp_path: Path,
) -> None:
    commands = LabCommands(tmp_path)
    peer = "/ip4/127.0.0.1/tcp/1/p2p/16Uiu2HAm"
    light = commands.command_for_client("client2", [peer], ClientFlags(light=True))
    assert "--light" in light and "--drop-frames" not in light and "--clock-offset" not in light
    skewed = commands.command_for_client(
        "client1", [peer], ClientFlags(loss=0.2, timer_scale=0.5, clock_offset=-30.0)
    )
    assert skewed[skewed.index("--clock-offset") + 1] == "-30.0"
    assert skewed[skewed.index("--drop-frames") + 1] == "0.2" and "--light" not in skewed
    node = commands.node_process("node0", 4000, True, (0, 1, 63), light_services=True).command
    assert "--filter" in node and "--lightpush" in node
    assert [node[i + 1] for i, a in enumerate(node) if a == "--shard"] == ["0", "1", "63"]
    plain = commands.node_process("node1", 4001, True, peers=["/ip4/127.0.0.1/tcp/4000/p2p/x"])
    assert "--filter" not in plain.command and "--shard" not in plain.command
    assert plain.command[plain.command.index("--peer") + 1] == "/ip4/127.0.0.1/tcp/4000/p2p/x"


def test_the_runner_applies_skews_of_the_first_second_before_the_clock(tmp_path: Path) -> None:
    run = LiveRun(parse_live_scenario(MIXED), tmp_path)
    assert run.initial_skews() == {"client1": 120.0}  # client2's starts at 5 s
    assert run.community is not None  # community traffic: a community is set up
    run.clock_offsets.update(run.initial_skews())
    assert run.flags(1) == ClientFlags(light=False, clock_offset=120.0)
    assert run.flags(2) == ClientFlags(light=True)
    assert LiveRun(LiveScenario(), tmp_path).community is None


def test_community_messages_are_planned_to_every_other_member() -> None:
    scenario = LiveScenario(
        duration=10.0, traffic=Traffic(direct_interval=0, community_interval=2.0)
    )
    plan = plan_traffic(scenario)
    assert [s.tag for s in plan] == ["c0", "c1", "c2", "c3", "c4"]
    assert {s.chat for s in plan} == {"community"} and [s.at for s in plan][:2] == [1.0, 3.0]
    assert plan == plan_traffic(scenario)


def test_a_skewed_clock_reaches_the_clients_relay_validator() -> None:
    """A machine with a wrong clock judges timestamps by it: its own skewed messages pass its
    validator and the network's real-time ones fall outside its ±5 min."""
    from chat.messenger import MessengerConfig
    from chat.messenger.facade import client_node

    config = skewed_clock(MessengerConfig(mdns=False), 400.0)
    assert isinstance(config.clock, SkewedClock)
    assert config.clock() == pytest.approx(time.time() + 400.0, abs=1.0)
    node = client_node(config)
    topic = node.pubsub_topic(0)

    def verdict(at: float) -> str:
        message = WakuMessage(b"x", "/chinwag/1/t/proto", timestamp=int(at * 1e9))
        return node.relay.validator(topic, message.encode(), None).outcome.value

    assert verdict(time.time() + 400.0) == "accept"
    assert verdict(time.time()) == "ignore"
    plain = client_node(MessengerConfig(mdns=False)).relay.validator
    now = WakuMessage(b"x", "/chinwag/1/t/proto", timestamp=time.time_ns()).encode()
    assert plain(topic, now, None).outcome.value == "accept"
    with pytest.raises(ValueError, match="clock offset"):
        skewed_clock(MessengerConfig(), float("nan"))


def test_messages_shown_after_later_ones_are_out_of_send_order() -> None:
    ledger = FateLedger(10.0)
    ledger.record_send("a", "client1", "community", "ch", ["client0"], at=10.0)  # skewed +120
    ledger.record_send("b", "client2", "community", "ch", ["client0"], at=12.0)
    ledger.record_send("c", "client2", "community", "ch", ["client0"], at=12.5)
    # client0 orders the channel by the senders' claimed times: a's claim is 2 min ahead.
    ledger.observe_incoming("client0", "ch", [("b", 12.1), ("c", 12.6), ("a", 10.1)])
    ledger.observe_shown("client0", "ch", ["b", "c", "a"])
    # client2 shows its own messages before client1's too.
    ledger.observe_shown("client2", "ch", ["b", "a", "c"])
    assert ledger.shown_out_of_send_order() == {("a", "client0"), ("a", "client2")}
    assert ledger.out_of_order() == set()  # per sender, every order is kept
    assert ledger.report()["shown_out_of_send_order"] == 2


def test_the_report_says_what_a_skew_did(tmp_path: Path) -> None:
    from chat.lab.live_report import build_report, describe_live

    scenario = LiveScenario(
        name="s",
        network=Network(clients=3),
        faults=(Fault("clock_skew", "client1", 0.0, 10.0, offset=400.0),),
    )
    run = LiveRun(scenario, tmp_path)
    run.origin = 1000.0
    run.ledger.record_send("d0", "client1", "direct", "c01", ["client0"], at=1001.0)
    run.ledger.record_send("d1", "client0", "direct", "c01", ["client1"], at=1002.0)
    run.ledger.record_send("d2", "client2", "direct", "c02", ["client0"], at=1003.0)
    run.ledger.observe_incoming("client0", "c01", [("d0", 1001.2)])
    run.shown_sent_at["d0"] = 400.1
    run.validation = {"node0": {"relay ignore/timestamp_out_of_window": 4, "lightpush v3 200": 2}}
    report = build_report(run, setup_seconds=1.0)
    [fault] = report["faults"]
    assert fault["skew"] == {
        "from_target": {"delivered": 1},
        "to_target": {"lost": 1},
        "shown_send_time_ahead_s": 400.1,
        "its_messages_shown_out_of_send_order": 0,
    }
    assert report["node_validation"]["node0"]["relay ignore/timestamp_out_of_window"] == 4
    text = describe_live(report)
    assert "its clock +400 s" in text
    assert "node0 refused: {'relay ignore/timestamp_out_of_window': 4}" in text


def test_a_fault_still_in_force_at_the_end_has_no_recovery(tmp_path: Path) -> None:
    """A 1 kbit/s cap for 160 s in a run that ended at 150 s: not "recovered 0 s after its
    end" (its end never came)."""
    from chat.lab.live_report import build_report, describe_live

    faults = (Fault("bandwidth", "client0", 0.0, 160.0, rate_bps=1000.0),
              Fault("pause", "client1", 1.0, 2.0))  # fmt: skip
    run = LiveRun(LiveScenario(faults=faults), tmp_path)
    run.origin, run.ended_at = 1000.0, 150.0
    run.ledger.record_send("d0", "client0", "direct", "c01", ["client1"], at=1001.5)
    run.ledger.observe_incoming("client1", "c01", [("d0", 1100.0)])
    capped, paused = build_report(run, setup_seconds=1.0)["faults"]
    assert capped["ended_in_run"] is False and capped["recovered_after_s"] is None
    assert paused["ended_in_run"] is True and paused["recovered_after_s"] == 97.0
    text = describe_live(build_report(run, setup_seconds=1.0))
    assert "bandwidth client0 at 0 s: still in force when the run ended" in text


def test_a_skewed_receipt_is_put_back_on_the_real_clock() -> None:
    """client2's clock was -200 s from 5 s to 20 s: a message it stamped with the skewed
    clock, and one received just before the restart (stamped with the real clock) but first
    seen after it, both come back to when they were received."""
    offsets = [-200.0, 0.0, -200.0]  # current first, then every one it has had
    assert true_receipt(1004.6 - 200.0, offsets, sent_at=1004.5, seen_at=1006.0) == 1004.6
    assert true_receipt(1004.6, offsets, sent_at=1004.5, seen_at=1006.0) == 1004.6
    assert true_receipt(1030.0, [0.0], sent_at=1000.0, seen_at=1031.0) == 1030.0
