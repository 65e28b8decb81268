"""`chinwag lab`: simulations of chinwag networks. `chinwag lab sim` runs a deterministic
relay simulation (chat.lab) and prints its report: the same seed gives the same report, byte
for byte."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chat.config import Config
from chat.errors import UserError

if TYPE_CHECKING:
    from chat.lab.scenario import RelayScenario

NAME = "lab"
HELP = (
    "simulate networks: 'lab sim' runs thousands of relay nodes in one process, 'lab run' "
    "real processes under faults, 'lab list' the shipped scenarios"
)
USES_PROFILE = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lab_command", metavar="LAB_COMMAND", required=True)
    sim = sub.add_parser(
        "sim",
        help="a deterministic relay simulation on a mock clock",
        description="Runs N relay routers over a simulated network (latency, loss, churn, "
        "partitions, a spammer) and prints a report: delivery, latency, hops, duplicates, "
        "bandwidth and amplification, mesh health. Options override the scenario file.",
    )
    sim.add_argument("--scenario", type=Path, help="a scenario TOML file (see docs/lab.md)")
    sim.add_argument("--nodes", type=int, help="relay nodes (default 1000)")
    sim.add_argument("--seed", type=int, help="random seed (default 1)")
    sim.add_argument("--duration", type=float, help="seconds of traffic (default 120)")
    sim.add_argument("--loss", type=float, help="frame loss on every link, 0..1 (default 0)")
    sim.add_argument(
        "--publish-interval", type=float, help="seconds between messages (default 0.3)"
    )
    sim.add_argument(
        "--spammer", action="store_true", help="add a node that sends invalid messages"
    )
    sim.add_argument(
        "--messenger", action="store_true",
        help="messenger mode: real messengers chat over simulated service nodes "
        "(also: mode = \"messenger\" in the scenario file)",
    )  # fmt: skip
    sim.add_argument("--clients", type=int, help="messenger mode: clients (default 100)")
    sim.add_argument("--json", action="store_true", help="print the report as JSON")
    sim.add_argument("--output", type=Path, help="also write the JSON report to this file")
    live = sub.add_parser(
        "run",
        help="a scripted scenario of real chinwag processes under faults",
        description="Starts service nodes and headless clients (chinwag serve) on loopback, "
        "makes them contacts and groups over the REST API, sends the scenario's traffic while "
        "its faults (kills, pauses, sleep, latency, bandwidth caps, partitions, loss) come and "
        "go, and reports every message's fate. SCENARIO: a TOML file or a shipped name "
        "('chinwag lab list').",
    )
    live.add_argument("scenario", help="a scenario TOML file or the name of a shipped one")
    live.add_argument("--json", action="store_true", help="print the report as JSON")
    live.add_argument("--output", type=Path, help="write the JSON report to this file")
    live.add_argument("--html", type=Path, help="write the report as an HTML page")
    live.add_argument(
        "--workdir", type=Path,
        help="where the lab's profiles, archives and logs go (default: a temporary directory)",
    )  # fmt: skip
    sub.add_parser("list", help="the shipped scenarios (for 'lab run' and 'lab sim')")


def scenario_from_args(args: argparse.Namespace) -> RelayScenario:
    # Imported here: `chinwag --help` and the other commands never load the simulator (trio).
    from chat.lab.scenario import ScenarioError, Spammer, load_scenario, scenario_from_dict

    overrides: dict[str, Any] = {
        "nodes": args.nodes,
        "seed": args.seed,
        "duration": args.duration,
        "loss": args.loss,
        "publish_interval": args.publish_interval,
    }
    try:
        if args.scenario is not None:
            scenario = load_scenario(args.scenario, **overrides)
        else:
            scenario = scenario_from_dict({}, "options", **overrides)
        if args.spammer and scenario.spammer is None:
            scenario = dataclasses.replace(scenario, spammer=Spammer())
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    return scenario


def run(args: argparse.Namespace, config: Config) -> int:
    if args.lab_command == "list":
        return list_scenarios()
    if args.lab_command == "run":
        return run_live(args)
    if args.messenger or (args.scenario is not None and _is_messenger_file(args.scenario)):
        from chat.lab.messenger_report import messenger_scenario_from_args, run_messenger_sim

        started = time.perf_counter()
        report = run_messenger_sim(messenger_scenario_from_args(args))
        text_of = _describe_messenger
    else:
        from chat.lab.relay_run import run_relay_scenario

        scenario = scenario_from_args(args)
        started = time.perf_counter()
        report = run_relay_scenario(scenario)
        text_of = describe
    wall = time.perf_counter() - started
    text = json.dumps(report, indent=2)
    if args.output is not None:
        try:
            args.output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    if args.json:
        print(text)
    else:
        print(text_of(report))
    # The wall time is not in the report: the report depends on the seed only.
    print(f"simulated in {wall:.1f} s of wall time", file=sys.stderr)
    return 0


def describe(report: dict[str, Any]) -> str:
    """The report's headline figures, for a person."""
    s = report["scenario"]
    m = report["messages"]
    lat = report["latency_ms"]
    hops = report["hops"]
    bw = report["bandwidth"]
    mesh = report["mesh"]["at_end"]
    lines = [
        f"relay simulation '{s['name']}': {s['nodes']} nodes, D={s['d']}, seed {s['seed']}, "
        f"{s['duration']:g} s of traffic, loss {s['loss']:g}",
        f"delivery:   {m['delivered']}/{m['expected_deliveries']} = {m['delivery_ratio']:.4%} "
        f"({m['published']} messages, {m['fully_delivered_messages']} reached everyone)",
        f"latency:    p50 {lat.get('p50', 0):.1f} ms, p90 {lat.get('p90', 0):.1f} ms, "
        f"p99 {lat.get('p99', 0):.1f} ms",
        f"hops:       mean {hops.get('mean', 0):.2f}, p99 {hops.get('p99', 0):g}, "
        f"max {hops.get('max', 0):g}",
        f"duplicates: {report['gossip']['duplicates_per_delivery']:.2f} per delivery; "
        f"{report['gossip']['received_after_iwant']} deliveries came by IHAVE/IWANT",
        f"bandwidth:  {bw['bytes_sent_per_s'].get('mean', 0):.0f} B/s sent per node (mean); "
        f"amplification {bw['amplification_network']:.2f}x the payload",
        f"mesh:       degree mean {mesh['mesh_degree'].get('mean', 0):.2f}, "
        f"{mesh['within_d_lo_d_hi']:.1%} within [D_lo, D_hi]",
    ]
    for part in report["partitions"]:
        lines.append(
            f"partition:  {part['start']:g}-{part['end']:g} s, {part['messages_during']} "
            f"messages, {part['cross_delivery_ratio']:.1%} crossed after the heal"
        )
    spam = report.get("spammer")
    if spam:
        lines.append(
            f"spammer:    {spam['spam_messages_sent']} invalid messages, "
            f"{spam['spam_delivered_to_apps']} delivered; disconnected by "
            f"{spam['disconnected_by']}/{spam['victims']} peers, lowest score "
            f"{spam['lowest_score']:g}"
        )
    return "\n".join(lines)


def _is_messenger_file(path: Path) -> bool:
    from chat.lab.messenger_scenario import is_messenger_file

    return is_messenger_file(path)


def _describe_messenger(report: dict[str, Any]) -> str:
    from chat.lab.messenger_report import describe_messenger

    return describe_messenger(report)


def _progress(text: str) -> None:
    print(f"lab: [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def list_scenarios() -> int:
    from chat.lab.catalog import shipped_scenarios

    for entry in shipped_scenarios():
        print(f"{entry.kind:4}  {entry.name:28}  {entry.description}")
    return 0


def run_live(args: argparse.Namespace) -> int:
    import tempfile

    import trio

    from chat.lab.catalog import resolve_live_scenario
    from chat.lab.live_processes import LabProcessError
    from chat.lab.live_report import describe_live, render_live_html
    from chat.lab.live_run import LabSetupError, LabStopped
    from chat.lab.live_run import run_live as run_scenario
    from chat.lab.scenario import ScenarioError

    try:
        scenario = resolve_live_scenario(args.scenario)
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="chinwag-lab-") as temporary:
        workdir = args.workdir or Path(temporary)
        try:
            report = trio.run(run_scenario, scenario, workdir, _progress)
        except* (LabSetupError, LabProcessError, LabStopped) as group:
            raise UserError(str(group.exceptions[0])) from None
        except* NotImplementedError as group:
            raise UserError(str(group.exceptions[0])) from None
    text = json.dumps(report, indent=2)
    for path, content in ((args.output, text + "\n"), (args.html, None)):
        if path is None:
            continue
        try:
            path.write_text(content or render_live_html(report), encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(text if args.json else describe_live(report))
    return 0
