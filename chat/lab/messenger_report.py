"""`chinwag lab sim --messenger` (or a scenario with `mode = "messenger"`): the scenario from
the command line, the run, and the report's headline figures for a person."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from chat.errors import UserError
from chat.lab.messenger_run import run_messenger_scenario
from chat.lab.messenger_scenario import (
    MessengerScenario,
    load_messenger_scenario,
    messenger_scenario_from_dict,
)
from chat.lab.scenario import ScenarioError


def messenger_scenario_from_args(args: argparse.Namespace) -> MessengerScenario:
    if args.spammer or args.nodes is not None or args.publish_interval is not None:
        raise UserError("--spammer, --nodes and --publish-interval are for the relay mode")
    overrides: dict[str, Any] = {
        "clients": args.clients,
        "seed": args.seed,
        "duration": args.duration,
        "loss": args.loss,
    }
    try:
        if args.scenario is not None:
            return load_messenger_scenario(args.scenario, **overrides)
        return messenger_scenario_from_dict({}, "options", **overrides)
    except ScenarioError as exc:
        raise UserError(str(exc)) from None


def run_messenger_sim(scenario: MessengerScenario) -> dict[str, object]:
    """The run, with the messengers' warnings held back: clients whose contact-request
    partitions coincide see each other's requests and log each as not for them."""
    chat_log = logging.getLogger("chat")
    level = chat_log.level
    chat_log.setLevel(logging.ERROR)
    try:
        return run_messenger_scenario(scenario)
    finally:
        chat_log.setLevel(level)


def describe_messenger(report: dict[str, Any]) -> str:
    s = report["scenario"]
    fates = report["fates"]
    counts = fates["fates"]
    latency = fates["latency_s"]
    states = report["sender_states"]
    to = states["seconds_to"]
    evidence = report["evidence"]
    ratio = fates["delivery_ratio"] or 0.0
    lines = [
        f"messenger simulation '{s['name']}': {s['clients']} clients, {s['service_nodes']} "
        f"service nodes, seed {s['seed']}, {s['duration']:g} s of traffic, loss {s['loss']:g}",
        f"contacts:   {report['contacts']['established']}/{report['contacts']['pairs']} pairs",
        f"held:       {counts['delivered'] + counts['late']}/{fates['expected_deliveries']} = "
        f"{ratio:.2%} ({counts['late']} late, {counts['lost']} never held; "
        f"{fates['duplicated']} duplicated, {fates['out_of_order']} out of order)",
        f"latency:    p50 {latency.get('p50', 0):g} s, p90 {latency.get('p90', 0):g} s, "
        f"max {latency.get('max', 0):g} s",
        "sender:     " + ", ".join(f"{n} {state}" for state, n in states["final"].items()),
        f"            delivered shown p50 {to['delivered'].get('p50', 0):g} s after sending, "
        f"stored p50 {to['stored'].get('p50', 0):g} s",
        f"evidence:   {evidence['delivered_before_held']} delivered before held, "
        f"{evidence['stored_before_store_held']} stored before a store held it",
    ]
    for part in report["partitions"]:
        lines.append(
            f"partition:  {part['start']:g}-{part['end']:g} s, {part['crossing_messages']} "
            f"messages across, {part['held_after_heal']} held after the heal"
        )
    if report["not_delivered_count"]:
        lines.append(f"not delivered: {report['not_delivered_count']} (see the JSON report)")
    return "\n".join(lines)
