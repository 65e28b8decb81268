"""`chinwag lab sim`: the relay simulation's report is deterministic, and what it reports
about delivery, partitions and a spammer holds."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trio.testing import MockClock

from chat.lab.relay_run import RelayRun, run_relay_scenario
from chat.lab.scenario import (
    Churn,
    Partition,
    RelayScenario,
    ScenarioError,
    Spammer,
    load_scenario,
)
from chat.waku.relay.params import Thresholds

REPO = Path(__file__).parents[2]

EVERYTHING = RelayScenario(
    name="everything",
    seed=11,
    nodes=60,
    warmup=4.0,
    duration=12.0,
    settle=4.0,
    publish_interval=0.25,
    loss=0.05,
    churn=Churn(interval=2.0, downtime=4.0),
    partitions=(Partition(start=4.0, end=7.0),),
    spammer=Spammer(start=2.0, rate=5.0, degree=6),
)


def _bytes(report: dict[str, object]) -> bytes:
    return json.dumps(report, indent=2).encode()


def test_same_seed_gives_the_same_report_byte_for_byte() -> None:
    first = _bytes(run_relay_scenario(EVERYTHING))
    second = _bytes(run_relay_scenario(EVERYTHING))
    assert first == second
    other = _bytes(run_relay_scenario(dataclasses.replace(EVERYTHING, seed=12)))
    assert other != first
    report = json.loads(first)
    assert report["churn"]["leaves"] == 5
    assert report["messages"]["published"] == 48
    assert report["spammer"]["disconnected_by"] == 6


@pytest.mark.slow
def test_cli_report_does_not_depend_on_hash_randomisation(tmp_path: Path) -> None:
    # Two `chinwag lab sim` processes with different PYTHONHASHSEEDs (set and dict orders of
    # strings and bytes differ between them) print the same JSON as an in-process run.
    scenario = tmp_path / "small.toml"
    scenario.write_text(
        'name = "small"\nnodes = 40\nwarmup = 3.0\nduration = 8.0\nsettle = 3.0\n'
        'loss = 0.05\n[latency]\ndistribution = "lognormal"\nmedian = 0.04\n'
        "[churn]\ninterval = 2.0\ndowntime = 3.0\n[[partitions]]\nstart = 2.0\nend = 4.0\n"
        "[spammer]\nstart = 1.0\nrate = 5.0\ndegree = 4\n"
    )
    outputs = []
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-m", "chat.cli", "--data-dir", str(tmp_path / "data")]
        command += ["lab", "sim", "--scenario", str(scenario), "--seed", "3", "--json"]
        done = subprocess.run(command, capture_output=True, env=env, timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode()
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    in_process = run_relay_scenario(load_scenario(scenario, seed=3))
    assert outputs[0].decode() == json.dumps(in_process, indent=2) + "\n"


@pytest.mark.slow
def test_1000_nodes_at_5_percent_loss_deliver_99_percent() -> None:
    scenario = RelayScenario(
        nodes=1000, warmup=5.0, duration=6.0, settle=4.0, publish_interval=0.5, loss=0.05
    )
    report = run_relay_scenario(scenario)
    messages = report["messages"]
    assert isinstance(messages, dict)
    assert messages["published"] == 12
    assert messages["expected_deliveries"] == 12 * 999
    assert messages["delivery_ratio"] >= 0.99
    gossip = report["gossip"]
    assert isinstance(gossip, dict)
    assert gossip["frames_lost"] > 0.04 * gossip["frames_sent"]
    mesh = report["mesh"]
    assert isinstance(mesh, dict)
    assert mesh["at_end"]["within_d_lo_d_hi"] >= 0.99


async def test_a_healed_partition_gets_the_recent_messages_by_gossip(
    autojump_clock: MockClock,
) -> None:
    # Frames across the cut are lost for 8 s. After the heal, IHAVE advertises the last
    # `history_gossip` heartbeats of messages, so those cross by IWANT; older ones are lost
    # to the relay (the store is what brings them back) and the report says so.
    scenario = RelayScenario(
        nodes=100,
        seed=4,
        warmup=5.0,
        duration=14.0,
        settle=6.0,
        publish_interval=0.25,
        partitions=(Partition(start=2.0, end=10.0, fraction=0.5),),
    )
    run = RelayRun(scenario)
    report = await run.run()
    heal = run.start + scenario.warmup + 10.0
    recent = old = recent_messages = 0
    recent_got = old_got = 0
    for record in run.messages:
        if not heal - 10.0 + 2.0 <= record.at < heal:
            continue
        far = range(50, 100) if record.origin < 50 else range(50)
        got = sum(1 for node in far if record.hops[node])
        if record.at >= heal - 1.5:
            recent += len(far)
            recent_got += got
            recent_messages += 1
        elif record.at < heal - 5.0:
            old += len(far)
            old_got += got
    assert recent > 0 and recent_got == recent
    assert old > 0 and old_got == 0
    partitions = report["partitions"]
    assert isinstance(partitions, list) and len(partitions) == 1
    assert 0 < partitions[0]["cross_delivery_ratio"] < 1
    # Only an IWANT can carry a message across the healed cut: at least one per message.
    assert report["gossip"]["received_after_iwant"] >= recent_messages  # type: ignore[index]
    # Messages after the heal reach everyone.
    after = [r for r in run.messages if r.at >= heal + 2.0]
    assert after and all(all(r.hops[n] for n in range(100)) for r in after)


def test_the_spammer_is_rejected_scored_down_pruned_and_disconnected() -> None:
    scenario = RelayScenario(
        nodes=100,
        seed=8,
        warmup=5.0,
        duration=12.0,
        settle=3.0,
        publish_interval=0.5,
        spammer=Spammer(start=2.0, rate=10.0, degree=8),
    )
    report = run_relay_scenario(scenario)
    spam = report["spammer"]
    assert isinstance(spam, dict)
    assert spam["victims"] == 8
    assert spam["spam_messages_sent"] == 100
    assert spam["spam_delivered_to_apps"] == 0
    assert spam["in_mesh_at_start"] > 0
    assert spam["pruned_from_mesh"] == spam["in_mesh_at_start"]
    assert spam["score_negative"] == spam["disconnected_by"] == 8
    assert spam["still_connected"] == 0
    assert spam["lowest_score"] < Thresholds().graylist
    assert spam["seconds_to_disconnect"]["max"] < 5.0
    messages = report["messages"]
    assert isinstance(messages, dict)
    assert messages["delivery_ratio"] == 1.0


def test_scenario_files_name_their_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("nodes = 100\nlos = 0.1\n")
    with pytest.raises(ScenarioError, match="unknown key 'los'"):
        load_scenario(bad)
    bad.write_text('nodes = 100\n[latency]\ndistribution = "pareto"\n')
    with pytest.raises(ScenarioError, match=r"latency\.distribution"):
        load_scenario(bad)
    bad.write_text("nodes = 100\nloss = \n")
    with pytest.raises(ScenarioError, match="line 2"):
        load_scenario(bad)
    bad.write_text("[spammer]\nrate = 0\n")
    with pytest.raises(ScenarioError, match=r"spammer\.rate must be positive"):
        load_scenario(bad)
    bad.write_text('nodes = "many"\n')
    with pytest.raises(ScenarioError, match="nodes must be a number"):
        load_scenario(bad)


def test_shipped_scenarios_load() -> None:
    # relay-*.toml are the simulator's; the others are `lab run` scenarios.
    shipped = sorted((REPO / "chat" / "lab" / "scenarios").glob("relay-*.toml"))
    assert shipped
    for path in shipped:
        assert load_scenario(path).nodes >= 1000


def test_cli_explains_a_bad_option_in_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chat.cli import main

    code = main(["--data-dir", str(tmp_path), "lab", "sim", "--nodes", "1"])
    assert code != 0
    err = capsys.readouterr().err
    assert err.startswith("chinwag: ") and "nodes must be at least 2" in err
    assert "Traceback" not in err
    missing = tmp_path / "missing.toml"
    assert main(["--data-dir", str(tmp_path), "lab", "sim", "--scenario", str(missing)]) != 0
    assert "cannot read" in capsys.readouterr().err


def test_cli_summary_names_the_headline_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chat.cli import main

    argv = ["--data-dir", str(tmp_path), "lab", "sim", "--nodes", "30", "--duration", "3"]
    assert main([*argv, "--spammer", "--output", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    for word in ("delivery:", "latency:", "hops:", "duplicates:", "bandwidth:", "mesh:"):
        assert word in out
    assert "spammer:" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["scenario"]["nodes"] == 30 and report["spammer"]["victims"] > 0
