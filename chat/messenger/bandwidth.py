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
