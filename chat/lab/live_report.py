"""The report of a `chinwag lab run`: JSON (the fates, latency, recovery per fault, bandwidth
per node, state that ran ahead of its evidence) and one self-contained HTML page drawn with
the telemetry report's helpers (chat.telemetry.collector.report_html)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from html import escape
from typing import TYPE_CHECKING, Any

from chat.lab.stats import rounded
from chat.lab.timeline import expand

if TYPE_CHECKING:
    from chat.lab.live_run import LiveRun


def build_report(run: LiveRun, setup_seconds: float) -> dict[str, Any]:
    scenario = run.scenario
    messages = run.ledger.report()
    faults = []
    for index, fault in enumerate(expand(scenario.faults, scenario.network.clients)):
        if fault.target.startswith("node"):
            targets = {c.profile for c in run.clients}  # a service node's fault hits everyone
        else:
            targets = {fault.target}
        ends_in_run = fault.end is not None and (run.ended_at is None or fault.end <= run.ended_at)
        # A fault still in force when the run ended has no recovery to measure.
        end = run.origin + fault.end if ends_in_run and fault.end is not None else None
        recovered = run.ledger.recovery(run.origin + fault.at, end, targets)
        entry = {
            "fault": index, **dataclasses.asdict(fault),
            "recovered_after_s": recovered,
            "recovered": recovered is not None,
            "ended_in_run": ends_in_run,
        }  # fmt: skip
        if fault.kind == "clock_skew":
            entry["skew"] = skew_effects(run, run.origin + fault.at, end, fault.target)
        faults.append(entry)
    for message in messages["lost"]:
        message["sent_at"] = rounded(message["sent_at"] - run.origin, 3)
    ok = (
        messages["fates"]["lost"] == 0
        and messages["duplicated"] == 0
        and not messages["ran_ahead_of_evidence"]
    )
    return {
        "scenario": dataclasses.asdict(scenario),
        "environment": {
            "isolation": run.isolation,
            "link_faults": "latency, jitter, bandwidth caps and partitions through the lab's "
            "userspace TCP proxy on each client-node link; loss through the clients' relay "
            "frame drop (serve --drop-frames), from the start of the traffic",
            "client_timer_scale": scenario.network.timer_scale,
            "light_clients": [
                c.profile for i, c in enumerate(run.clients) if scenario.network.is_light(i)
            ],
            "notes": run.notes,
        },
        "setup_s": rounded(setup_seconds, 1),
        "messages": messages,
        "skipped_sends": run.skipped_sends,
        "faults": faults,
        "timeline": run.events,
        "bandwidth": run.bandwidth,
        "node_validation": run.validation,
        "health_at_end": run.health_at_end,
        "restarts": {p.name: p.restarts for p in run.commands.processes if p.restarts},
        "verdict": "every message delivered once" if ok else "losses or anomalies (see above)",
        "all_delivered_once": ok,
    }


def skew_effects(run: LiveRun, start: float, end: float | None, target: str) -> dict[str, Any]:
    """What a clock_skew did: the fates of the messages from and to the skewed client sent
    while it was skewed, and how far ahead of their real send time its receivers show its
    messages (the conversation is ordered by that)."""
    ledger = run.ledger
    out: dict[str, Any] = {}
    for side in ("from", "to"):
        fates: dict[str, int] = {}
        for tag, sent in ledger.sent.items():
            if not (start <= sent.sent_at and (end is None or sent.sent_at < end)):
                continue
            if (sent.sender == target) != (side == "from"):
                continue
            for receiver in sent.recipients:
                if side == "to" and receiver != target:
                    continue
                fate = ledger.fate(tag, receiver)
                fates[fate] = fates.get(fate, 0) + 1
        out[f"{side}_target"] = fates
    shown = sorted(
        run.shown_sent_at[tag]
        for tag, sent in ledger.sent.items()
        if sent.sender == target and tag in run.shown_sent_at
        and start <= sent.sent_at and (end is None or sent.sent_at < end)
    )  # fmt: skip
    out["shown_send_time_ahead_s"] = rounded(shown[len(shown) // 2], 1) if shown else None
    misplaced = ledger.shown_out_of_send_order()
    out["its_messages_shown_out_of_send_order"] = sum(
        1 for tag, _ in misplaced if ledger.sent[tag].sender == target
    )
    return out


def describe_live(report: Mapping[str, Any]) -> str:
    """The headline figures, for a person."""
    m = report["messages"]
    fates, lat = m["fates"], m["latency_s"]
    lines = [
        f"lab run '{report['scenario']['name']}': {m['messages_sent']} messages, "
        f"{m['expected_deliveries']} expected deliveries",
        f"isolation:  {report['environment']['isolation']}",
        f"fates:      {fates['delivered']} delivered, {fates['late']} late, {fates['lost']} lost; "
        f"{m['duplicated']} duplicated, {m['out_of_order']} out of order, "
        f"{m['shown_out_of_send_order']} shown out of send order",
        f"latency:    p50 {lat.get('p50', 0):.2f} s, p90 {lat.get('p90', 0):.2f} s, "
        f"p99 {lat.get('p99', 0):.2f} s, max {lat.get('max', 0):.2f} s",
    ]
    answers = m["send_answer_s"]
    if answers.get("count"):
        lines.append(
            f"writes:     the API answered in p50 {answers.get('p50', 0):.2f} s, "
            f"max {answers.get('max', 0):.2f} s"
        )
    for failed in m["failed_sends"]:
        lines.append(f"not sent:   {failed['message']} from {failed['from']}: {failed['error']}")
    for fault in report["faults"]:
        recovered = fault["recovered_after_s"]
        lines.append(
            f"fault {fault['fault']}:    {fault['kind']} {fault['target']} at {fault['at']:g} s: "
            + (
                f"recovered {recovered:g} s after its end"
                if recovered is not None
                else "never recovered"
                if fault.get("ended_in_run", True)
                else "still in force when the run ended"
            )
        )
        if "skew" in fault:
            skew = fault["skew"]
            lines.append(
                f"            its clock {fault['offset']:+g} s: from it {skew['from_target']}, "
                f"to it {skew['to_target']}; shown sent "
                f"{skew['shown_send_time_ahead_s']} s off, "
                f"{skew['its_messages_shown_out_of_send_order']} shown out of send order"
            )
    for node, counts in sorted(report.get("node_validation", {}).items()):
        refused = {k: v for k, v in counts.items() if not k.startswith("lightpush")
                   or not k.endswith(" 200")}  # fmt: skip
        if refused:
            lines.append(f"{node} refused: {refused}")
    ahead = m["ran_ahead_of_evidence"]
    lines.append(f"ran ahead:  {len(ahead)} 'delivered' shown before the recipient held it")
    lines.append(f"verdict:    {report['verdict']}")
    return "\n".join(lines)


def render_live_html(report: Mapping[str, Any]) -> str:
    from chat.telemetry.collector.report_html import _STYLE, COLORS, CSP, bar_chart

    m = report["messages"]
    chats = sorted(m["by_chat"])
    fate_chart = bar_chart(
        "Fates per conversation kind", chats,
        [(fate, COLORS["delivered" if fate == "delivered" else "lost" if fate == "lost"
                       else "unknown"], [m["by_chat"][c][fate] for c in chats])
         for fate in ("delivered", "late", "lost")],
        top=max([sum(m["by_chat"][c].values()) for c in chats] or [1]), unit="", stacked=True,
    )  # fmt: skip
    lat = m["latency_s_by_chat"]
    latency_chart = bar_chart(
        "Latency per conversation kind (s)", chats,
        [(p, COLORS[p], [lat[c].get(p) for c in chats]) for p in ("p50", "p90", "p99")],
        top=max([lat[c].get("p99", 0) for c in chats] or [1]) or 1.0, unit=" s",
    )  # fmt: skip
    rows = "".join(
        f"<tr><td>{f['fault']}</td><td>{escape(f['kind'])}</td><td>{escape(f['target'])}</td>"
        f"<td>{f['at']:g}</td><td>{'never' if f['duration'] is None else f['duration']}</td>"
        f"<td>{'not recovered' if f['recovered_after_s'] is None else f['recovered_after_s']}"
        "</td></tr>"
        for f in report["faults"]
    )
    ahead = "".join(
        f"<tr><td>{escape(a['message'])}</td><td>{escape(a['recipient'])}</td>"
        f"<td>{a['delivered_shown_at']}</td><td>{a['held_at']}</td></tr>"
        for a in m["ran_ahead_of_evidence"]
    )
    summary = describe_live(report)
    return (
        f'<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>chinwag lab run: {escape(report['scenario']['name'])}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Lab run: {escape(report['scenario']['name'])}</h1>"
        f"<pre>{escape(summary)}</pre>{fate_chart}{latency_chart}"
        "<h2>Faults</h2><table><tr><th>#</th><th>kind</th><th>target</th><th>at (s)</th>"
        f"<th>duration (s)</th><th>recovered after (s)</th></tr>{rows}</table>"
        "<h2>State ahead of its evidence</h2>"
        + (
            "<table><tr><th>message</th><th>recipient</th><th>delivered shown at (s)</th>"
            f"<th>held at (s)</th></tr>{ahead}</table>"
            if ahead
            else '<p class="note">None: no recipient was shown as delivered before it held '
            "the message.</p>"
        )
        + f'<p class="note">{escape(report["environment"]["isolation"])}; '
        f"{escape(report['environment']['link_faults'])}.</p></body></html>"
    )
