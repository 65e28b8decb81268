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
HELP = "simulate networks: 'lab sim' runs thousands of relay nodes in one process"
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
    sim.add_argument("--json", action="store_true", help="print the report as JSON")
    sim.add_argument("--output", type=Path, help="also write the JSON report to this file")


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
    from chat.lab.relay_run import run_relay_scenario

    scenario = scenario_from_args(args)
    started = time.perf_counter()
    report = run_relay_scenario(scenario)
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
        print(describe(report))
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
