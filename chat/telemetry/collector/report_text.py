"""The reliability report as plain text, for the terminal (`chinwag collector report`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chat.telemetry.collector.report import DIMENSIONS
from chat.telemetry.collector.report_html import RATE_ROWS, format_latency, format_rate


def _summary(summary: Mapping[str, Any], indent: str) -> list[str]:
    lines = [
        f"{indent}pairs {summary['pairs']}: delivered {summary['delivered']} "
        f"(real time {summary['delivered_rt']}), lost {summary['lost']}, "
        f"unknown {summary['unknown']}; messages sent {summary['sent']}"
    ]
    lines += [f"{indent}{label}: {format_rate(summary[name])}" for name, label in RATE_ROWS]
    lines.append(f"{indent}latency p50/p90/p99: {format_latency(summary['latency_ms'])}")
    return lines


def render_text(report: Mapping[str, Any]) -> str:
    lines = ["Overall", *_summary(report["overall"], "  ")]
    lines.append(
        "  receiver-relative index (biased, for comparison): "
        + format_rate(report["receiver_relative_index_biased"])
    )
    for name in DIMENSIONS:
        for key, summary in report["by"][name].items():
            lines.append(f"By {name}: {key}")
            lines += _summary(summary, "  ")
    health = report["telemetry"]
    lines.append("Telemetry's own loss")
    lines.append(f"  installs {health['installs']}, events {health['events']}")
    lines.append(f"  missing by sequence number: {format_rate(health['seq_loss'])}")
    lines.append(f"  uploaded over 1 h late: {format_rate(health['late_share'])}")
    lines.append(f"  dropped by clients: {health['client_dropped'] or 'none'}")
    for kind, item in health["reconciliation"].items():
        state = "reconciled" if item["reconciled"] else "NOT reconciled"
        lines.append(
            f"  msg_{kind}: heartbeats {item['heartbeat_total']}, events {item['events']}, "
            f"reported dropped {item['reported_dropped']}: {state}"
        )
    return "\n".join(lines)
