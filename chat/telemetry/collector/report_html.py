"""The reliability report as one self-contained HTML page: inline CSS and inline SVG charts,
no script, no font, no image, no link; a Content-Security-Policy that forbids fetching
anything, so it opens the same offline as online."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from chat.telemetry.collector.report import DIMENSIONS

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
COLORS = {
    "delivered": "#2e7d32",
    "lost": "#c62828",
    "unknown": "#9e9e9e",
    "known": "#1565c0",
    "lower": "#90caf9",
    "p50": "#6a1b9a",
    "p90": "#ab47bc",
    "p99": "#e1bee7",
}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}
.wide{overflow-x:auto}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
.breakdown th:first-child{font-weight:normal}
.provisional{color:#b26a00;font-style:italic}
.note{color:#555;font-size:.9em}
svg{display:block;margin:1.2em 0}
svg text{font-size:11px;font-family:system-ui,sans-serif}
"""

_PROVISIONAL = ' class="provisional"'
RATE_ROWS = (
    ("eventual_delivery_known", "Eventual delivery (known pairs)"),
    ("eventual_delivery_lower_bound", "Eventual delivery, lower bound (all pairs)"),
    ("realtime_delivery_online", "Real-time delivery (≤10 s) while online"),
    ("send_accepted", "Send accepted by the network (any attempt)"),
    ("send_confirmation", "Send confirmation (store seen)"),
    ("e2e_confirmation", "End-to-end confirmation (ack)"),
    ("gap_rate", "Receiver-local gap rate"),
    ("recovery_rate", "Gap recovery rate"),
)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def format_latency(latency: Mapping[str, Any]) -> str:
    if not latency["n"]:
        return "– (n=0)"
    return f"{latency['p50']} / {latency['p90']} / {latency['p99']} ms (n={latency['n']})"


def format_rate(item: Mapping[str, Any]) -> str:
    text = f"{_percent(item['value'])} (n={item['n']}"
    if "coverage" in item:
        text += f", coverage {_percent(item['coverage'])}"
    text += ")"
    if item.get("provisional"):
        text += " provisional"
    return text


TICKS = 4
CHAR_PX = 7.0
"""A generous width of one 11 px character, to size the axis' margin to its labels."""


def axis_top(peak: float) -> float:
    """The smallest 1, 2 or 5 x 10^k step whose `TICKS` steps reach `peak`, times `TICKS`:
    round tick values (whole numbers for counts over 4), never a tick like 3.5 pairs."""
    if peak <= TICKS:
        return float(TICKS)  # steps of 1: counts and milliseconds stay whole
    magnitude = 10.0 ** math.floor(math.log10(peak / TICKS))
    for factor in (1, 2, 5, 10):
        step = factor * magnitude
        if step * TICKS >= peak:
            return step * TICKS
    return 10 * magnitude * TICKS  # not reached: 10 x magnitude always covers it


def tick_label(value: float) -> str:
    """Plain digits with thousands separated (never 1.289e+04): the axis must read at a
    glance."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    *,
    top: float,
    unit: str,
    stacked: bool = False,
) -> str:
    """An SVG bar chart: one group of bars (or one stack) per category; the left margin
    widens to fit the longest tick label."""
    labels = [f"{tick_label(top * tick / TICKS)}{unit}" for tick in range(TICKS + 1)]
    width, height, bottom = 760, 260, 40
    left = max(60, int(12 + CHAR_PX * max(len(label) for label in labels)))
    plot_w, plot_h = width - left - 20, height - bottom - 30
    slot = plot_w / max(1, len(categories))
    bar = slot * 0.8 / (1 if stacked else max(1, len(series)))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
        f'<text x="{left}" y="16" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{30 + plot_h}" x2="{left + plot_w}" y2="{30 + plot_h}" '
        'stroke="#333"/>',
    ]
    for tick, label in enumerate(labels):
        y = 30 + plot_h - plot_h * tick / TICKS
        parts.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>'
        )
    for index, category in enumerate(categories):
        x0 = left + slot * index + slot * 0.1
        base: float = 30 + plot_h
        for number, (name, color, values) in enumerate(series):
            amount = values[index]
            if amount is None:
                continue
            h = plot_h * min(amount, top) / top if top else 0.0
            if amount > 0:
                h = max(h, 1.0)  # a p50 of 11 ms beside a p99 of 13 s is still drawn
            x = x0 if stacked else x0 + bar * number
            y = base - h
            tip = f"{category} {name}: {tick_label(round(amount, 2))}{unit}"
            parts.append(
                f'<rect class="bar" data-series="{escape(name)}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            if stacked:
                base = y
        parts.append(
            f'<text x="{x0 + slot * 0.4:.1f}" y="{30 + plot_h + 16}" text-anchor="middle">'
            f"{escape(category)}</text>"
        )
    legend_x = left
    for name, color, _ in series:
        parts.append(
            f'<rect x="{legend_x}" y="{height - 12}" width="10" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 14}" y="{height - 3}">{escape(name)}</text>'
        )
        legend_x += 20 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def _charts(report: Mapping[str, Any]) -> list[str]:
    days = report["by"]["day"]
    names = list(days)
    if not names:
        return ['<p class="note">No messages were sent in this window.</p>']
    known = [days[d]["eventual_delivery_known"]["value"] for d in names]
    lower = [days[d]["eventual_delivery_lower_bound"]["value"] for d in names]
    labels = [f"{d}{' (provisional)' if days[d]['eventual_delivery_known']['provisional'] else ''}"
              for d in names]  # fmt: skip
    charts = [
        bar_chart(
            "Eventual delivery by day: known pairs and lower bound",
            labels,
            [
                ("known", COLORS["known"], [None if v is None else v * 100 for v in known]),
                ("lower bound", COLORS["lower"], [None if v is None else v * 100 for v in lower]),
            ],
            top=100,
            unit="%",
        ),
        bar_chart(
            "Message-receiver pairs by day",
            names,
            [(k, COLORS[k], [days[d][k] for d in names]) for k in ("delivered", "lost", "unknown")],
            top=axis_top(max(days[d]["pairs"] for d in names)),
            unit="",
            stacked=True,
        ),
    ]
    latency = [[days[d]["latency_ms"][p] for d in names] for p in ("p50", "p90", "p99")]
    peak = max((v for row in latency for v in row if v is not None), default=0)
    charts.append(
        bar_chart(
            "Delivery latency by day (ms)",
            names,
            [
                (p, COLORS[p], [None if v is None else float(v) for v in row])
                for p, row in zip(("p50", "p90", "p99"), latency, strict=True)
            ],
            top=axis_top(float(peak)),
            unit="",
        )
    )
    return charts


def _summary_table(title: str, groups: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per figure, one column per group: a cohort or a week of days fits the page
    (one column per figure was 15 columns wide, and the latency column fell off the right
    edge of a 1200 px window); many days scroll sideways."""
    names = list(groups)
    rows = [
        ("pairs", [str(groups[group]["pairs"]) for group in names], [False] * len(names)),
        (
            "delivered / lost / unknown",
            [
                " / ".join(str(groups[group][count]) for count in ("delivered", "lost", "unknown"))
                for group in names
            ],
            [False] * len(names),
        ),
        *(
            (
                label,
                [format_rate(groups[group][key]) for group in names],
                [bool(groups[group][key].get("provisional")) for group in names],
            )
            for key, label in RATE_ROWS
        ),
        (
            "latency p50 / p90 / p99",
            [format_latency(groups[group]["latency_ms"]) for group in names],
            [False] * len(names),
        ),
    ]
    head = "".join(f"<th>{escape(name)}</th>" for name in names)
    body = "".join(
        f"<tr><th>{escape(label)}</th>"
        + "".join(
            f"<td{_PROVISIONAL if provisional else ''}>{escape(cell)}</td>"
            for cell, provisional in zip(cells, flags, strict=True)
        )
        + "</tr>"
        for label, cells, flags in rows
    )
    return (
        f'<h3>{escape(title)}</h3><div class="wide"><table class="breakdown">'
        f"<tr><th></th>{head}</tr>{body}</table></div>"
    )


def _overall_table(summary: Mapping[str, Any]) -> str:
    """The overall figures, one per row: easier to read than one wide row."""
    latency = summary["latency_ms"]
    rows = [
        ("pairs (message x expected receiver)", str(summary["pairs"])),
        ("delivered / in real time / lost / unknown",
         f"{summary['delivered']} / {summary['delivered_rt']} / {summary['lost']} / "
         f"{summary['unknown']}"),
        ("messages sent", str(summary["sent"])),
        *((label, format_rate(summary[name])) for name, label in RATE_ROWS),
        ("latency p50 / p90 / p99", format_latency(latency)),
    ]  # fmt: skip
    body = "".join(
        f"<tr><td>{escape(a)}</td><td{_PROVISIONAL if 'provisional' in b else ''}>"
        f"{escape(b)}</td></tr>"
        for a, b in rows
    )
    return f'<table id="overall-figures">{body}</table>'


def _health(report: Mapping[str, Any]) -> str:
    health = report["telemetry"]
    rows = [
        ("installs reporting", str(health["installs"])),
        ("events stored", str(health["events"])),
        ("events missing by sequence number", format_rate(health["seq_loss"])),
        ("events uploaded more than 1 h late", format_rate(health["late_share"])),
        ("time offline (heartbeats)", format_rate(health["offline_share"])),
        (
            "events dropped by clients",
            ", ".join(f"{k}: {v}" for k, v in health["client_dropped"].items()) or "none",
        ),
    ]
    for kind, item in health["reconciliation"].items():
        rows.append(
            (
                f"reconciliation of msg_{kind}",
                f"heartbeats {item['heartbeat_total']}, events {item['events']}, missing "
                f"{item['missing_events']}, reported dropped {item['reported_dropped']}: "
                + ("reconciled" if item["reconciled"] else "NOT reconciled"),
            )
        )
    body = "".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td></tr>" for a, b in rows)
    return f"<h2>Telemetry's own loss</h2><table>{body}</table>"


def render_html(report: Mapping[str, Any]) -> str:
    window = report["window"]
    overall = report["overall"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        "<title>chinwag reliability report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>chinwag reliability report</h1>",
        f'<p class="note">Messages sent from {_time(window["from"])} to {_time(window["to"])}; '
        f"computed {_time(window['computed_at'])}. A pair is one message and one expected "
        "receiver. Unknown pairs (receiver not heard from 24 h after the message) are neither "
        "delivered nor lost; rates with coverage under 80 % are provisional.</p>",
        '<h2 id="overall">Overall</h2>',
        _overall_table(overall),
        f"<p>Receiver-relative index (Status's method, biased: a message nobody received is "
        f"invisible to it): {escape(format_rate(report['receiver_relative_index_biased']))}</p>",
        "<h2>Charts</h2>",
        *_charts(report),
        "<h2>Breakdowns</h2>",
        *(
            _summary_table(f"By {name.replace('_', ' ')}", report["by"][name])
            for name in DIMENSIONS
        ),
        _health(report),
        "</body></html>",
    ]
    return "\n".join(parts)
