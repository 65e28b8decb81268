"""`chinwag lab sim --messenger`: real messengers over simulated service nodes. The report
repeats byte for byte, every message ends delivered or is reported with its reason, and no
sender's state runs ahead of its evidence."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chat.lab.catalog import shipped_scenarios
from chat.lab.messenger_ledger import MessengerLedger
from chat.lab.messenger_run import run_messenger_scenario
from chat.lab.messenger_scenario import MessengerScenario, load_messenger_scenario
from chat.lab.scenario import Churn, Partition, ScenarioError

REPO = Path(__file__).parents[2]

FAULTS = MessengerScenario(
    name="faults",
    seed=5,
    clients=12,
    service_nodes=4,
    warmup=10.0,
    duration=30.0,
    settle=200.0,
    message_interval=1.0,
    loss=0.1,
    churn=Churn(interval=6.0, downtime=15.0),
    partitions=(Partition(start=5.0, end=15.0, fraction=0.5),),
)


def _bytes(report: dict[str, object]) -> bytes:
    return json.dumps(report, indent=2).encode()


FAULTS_TOML = """mode = "messenger"
name = "faults"
seed = 5
clients = 12
service_nodes = 4
warmup = 10.0
duration = 20.0
settle = 60.0
message_interval = 1.0
loss = 0.1
[churn]
interval = 6.0
downtime = 15.0
[[partitions]]
start = 5.0
end = 15.0
fraction = 0.5
"""


@pytest.mark.slow
def test_same_seed_gives_the_same_report_byte_for_byte(tmp_path: Path) -> None:
    # Two `chinwag lab sim` processes with different PYTHONHASHSEEDs, and a run in this
    # process: the messengers' keys, ciphertexts and content topics differ each time, the
    # report does not.
    scenario = tmp_path / "faults.toml"
    scenario.write_text(FAULTS_TOML)
    short = dataclasses.replace(FAULTS, duration=20.0, settle=60.0)
    assert load_messenger_scenario(scenario) == short
    outputs = []
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-m", "chat.cli", "--data-dir", str(tmp_path / "data")]
        command += ["lab", "sim", "--scenario", str(scenario), "--json"]
        done = subprocess.run(command, capture_output=True, env=env, timeout=600, check=False)
        assert done.returncode == 0, done.stderr.decode()
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0] == _bytes(run_messenger_scenario(short)) + b"\n"


@pytest.mark.slow
def test_under_loss_churn_and_a_partition_every_message_is_delivered_on_evidence() -> None:
    report = run_messenger_scenario(FAULTS)
    assert report["contacts"] == {"pairs": 12, "established": 12}
    assert report["messages_sent"] == 30
    network = report["network"]
    assert isinstance(network, dict)
    assert network["frames_lost"] > 0.05 * network["frames_sent"]
    assert network["frames_cut"] > 0
    partition = report["partitions"][0]  # type: ignore[index]
    assert partition["crossing_messages"] > 0
    assert partition["held_after_heal"] == partition["crossing_messages"]
    states = report["sender_states"]
    assert isinstance(states, dict)
    assert states["final"]["delivered"] == 30
    assert report["not_delivered_count"] == 0
    fates = report["fates"]
    assert isinstance(fates, dict)
    assert fates["fates"]["lost"] == 0 and fates["delivery_ratio"] == 1.0
    assert fates["fates"]["late"] > 0  # the faults cost time, not messages
    # Each sender showed `stored` and `delivered` only on evidence.
    assert states["seconds_to"]["stored"]["count"] > 0
    assert report["evidence"] == {
        "delivered_before_held": 0,
        "stored_before_store_held": 0,
        "violations": [],
    }


@pytest.mark.slow
def test_a_partition_that_never_heals_is_reported_not_delivered_with_its_reason() -> None:
    scenario = dataclasses.replace(
        FAULTS,
        name="no-heal",
        settle=60.0,
        churn=Churn(),
        partitions=(Partition(start=5.0, end=10_000.0, fraction=0.5),),
    )
    report = run_messenger_scenario(scenario)
    partition = report["partitions"][0]  # type: ignore[index]
    crossing = partition["crossing_messages"]
    assert crossing > 0 and partition["held_after_heal"] == 0
    assert partition["shown_delivered"] == 0
    missing = report["not_delivered"]
    assert isinstance(missing, list)
    assert report["not_delivered_count"] == len(missing) >= crossing
    for item in missing:
        assert item["state"] in ("sent", "stored", "queued", "failed")
        assert item["held_by_recipient_at"] is None
    fates = report["fates"]
    assert isinstance(fates, dict)
    assert fates["fates"]["lost"] == len(missing)
    assert report["evidence"]["violations"] == []  # type: ignore[index]


def _ledger() -> MessengerLedger:
    ledger = MessengerLedger(late_after=10.0, origin=100.0)
    ledger.sent("m00000", "c000", "c001", "chat", "id-0", at=101.0)
    ledger.state("id-0", "sent", 101.0)
    return ledger


def test_the_ledger_flags_delivered_before_the_recipient_held_it() -> None:
    ledger = _ledger()
    ledger.state("id-0", "delivered", 105.0)
    ledger.held("m00000", "c001", "chat", 107.0)
    report = ledger.report()
    assert report["evidence"]["delivered_before_held"] == 1
    (flag,) = report["evidence"]["violations"]
    assert flag == {
        "message": "m00000", "from": "c000", "to": "c001",
        "delivered_shown_at": 5.0, "held_at": 7.0,
    }  # fmt: skip
    assert report["fates"]["ran_ahead_of_evidence"]

    never = _ledger()
    never.state("id-0", "delivered", 105.0)
    assert never.report()["evidence"]["violations"][0]["held_at"] is None

    honest = _ledger()
    honest.held("m00000", "c001", "chat", 103.0)
    honest.state("id-0", "delivered", 105.0)
    assert honest.report()["evidence"]["violations"] == []


def test_the_ledger_flags_stored_before_a_store_held_it() -> None:
    ledger = _ledger()
    ledger.state("id-0", "stored", 104.0)
    ledger.store_held("m00000", 104.5)
    assert ledger.report()["evidence"]["stored_before_store_held"] == 1
    ledger.store_held("m00000", None)
    assert ledger.report()["evidence"]["stored_before_store_held"] == 1
    ledger.store_held("m00000", 103.9)
    assert ledger.report()["evidence"]["stored_before_store_held"] == 0


def test_a_small_run_reports_every_message_and_the_states_its_sender_showed() -> None:
    scenario = MessengerScenario(
        clients=4, service_nodes=2, warmup=8.0, duration=6.0, settle=20.0, loss=0.0
    )
    report = run_messenger_scenario(scenario)
    assert report["messages_sent"] == 6
    states = report["sender_states"]
    assert isinstance(states, dict)
    assert states["final"]["delivered"] == 6
    assert states["seconds_to"]["delivered"]["max"] < 2.0
    assert report["evidence"]["violations"] == []  # type: ignore[index]


def test_scenario_files_name_their_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('mode = "messenger"\nclient = 10\n')
    with pytest.raises(ScenarioError, match="unknown key 'client'"):
        load_messenger_scenario(bad)
    bad.write_text('mode = "messenger"\nservice_nodes = 1\n[[partitions]]\nstart = 1\nend = 2\n')
    with pytest.raises(ScenarioError, match="service nodes on both sides"):
        load_messenger_scenario(bad)
    bad.write_text('mode = "messenger"\nclients = \n')
    with pytest.raises(ScenarioError, match="line 2"):
        load_messenger_scenario(bad)


def test_the_shipped_scenario_loads_and_is_listed() -> None:
    scenario = load_messenger_scenario(REPO / "chat" / "lab" / "scenarios" / "messenger-100.toml")
    assert scenario.clients >= 100 and scenario.partitions and scenario.loss > 0
    listed = {entry.name: entry.kind for entry in shipped_scenarios()}
    assert listed["messenger-100"] == "sim"


def test_cli_runs_the_messenger_mode_and_prints_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chat.cli import main

    argv = ["--data-dir", str(tmp_path), "lab", "sim", "--messenger", "--clients", "3"]
    argv += ["--duration", "4", "--output", str(tmp_path / "r.json")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for word in ("messenger simulation", "held:", "sender:", "evidence:"):
        assert word in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["scenario"]["clients"] == 3 and report["messages_sent"] == 4
    assert main(["--data-dir", str(tmp_path), "lab", "sim", "--messenger", "--nodes", "5"]) != 0
    assert "relay mode" in capsys.readouterr().err
