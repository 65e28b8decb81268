"""The bandwidth meter's snapshot (chat/waku/bandwidth.py) as the faces' view."""

from __future__ import annotations

from chat import events as ev
from chat.waku.bandwidth import Line, Snapshot


def line_view(line: Line) -> ev.BandwidthLineView:
    minute, hour = line.rates
    return ev.BandwidthLineView(
        name=line.name,
        bytes_in=line.bytes_in,
        bytes_out=line.bytes_out,
        messages_in=line.messages_in,
        messages_out=line.messages_out,
        minute_in=minute.in_per_s,
        minute_out=minute.out_per_s,
        hour_in=hour.in_per_s,
        hour_out=hour.out_per_s,
    )


def bandwidth_view(snapshot: Snapshot) -> ev.BandwidthView:
    return ev.BandwidthView(
        uptime=snapshot.uptime,
        protocols=[line_view(line) for line in snapshot.protocols],
        kinds=[line_view(line) for line in snapshot.kinds],
        wire=line_view(snapshot.wire),
        transport=line_view(snapshot.transport),
    )


HEARTBEAT_PROTOCOLS: dict[str, str] = {
    "relay": "relay",
    "store": "store",
    "filter": "filter",
    "lightpush": "lightpush",
    "metadata": "metadata",
    "identify": "identify",
    "discovery": "discovery",
    "ping": "other",
    "other": "other",
    "transport": "other",
}
"""The meter's protocols under the names of the telemetry heartbeat's `bw` (docs/telemetry.md
on main): keep-alives and connection framing count as `other`."""
HEARTBEAT_KINDS: dict[str, str] = {
    "control": "control",
    "subscriptions": "control",
    "chat": "chat",
    "sync": "sync",
    "contact_request": "request",
    "join_request": "request",
    "message": "other",
}
"""The meter's relay kinds under the heartbeat's `bw_kind` names. Receipts travel inside SDS
syncs, so they are in `sync` (the heartbeat's `receipt` stays out); subscriptions are
pubsub control."""

Counters = dict[str, dict[str, int]]


def heartbeat_totals(view: ev.BandwidthView) -> tuple[Counters, Counters]:
    """Totals since the node started, as the heartbeat names them: `bw` ({in, out} per
    protocol) and `bw_kind` ({n, bytes} per kind). A heartbeat sends the difference between
    two of these (`heartbeat_delta`)."""
    bw: Counters = {}
    for line in [*view.protocols, view.transport]:
        into = bw.setdefault(HEARTBEAT_PROTOCOLS.get(line.name, "other"), {"in": 0, "out": 0})
        into["in"] += line.bytes_in
        into["out"] += line.bytes_out
    kinds: Counters = {}
    for line in view.kinds:
        into = kinds.setdefault(HEARTBEAT_KINDS.get(line.name, "other"), {"n": 0, "bytes": 0})
        into["n"] += line.messages_in + line.messages_out
        into["bytes"] += line.bytes_in + line.bytes_out
    return bw, kinds


def heartbeat_delta(before: Counters, after: Counters) -> Counters:
    """What was counted between two totals (never negative: a restarted node starts at 0)."""
    return {
        name: {
            field: max(0, value - before.get(name, {}).get(field, 0))
            for field, value in fields.items()
        }
        for name, fields in after.items()
    }
