"""The meter's snapshot as the faces' view, and its totals under the telemetry heartbeat's
names (`bw`, `bw_kind`), with the deltas a heartbeat sends."""

from __future__ import annotations

from chat.messenger.bandwidth import bandwidth_view, heartbeat_delta, heartbeat_totals
from chat.waku.bandwidth import IN, OUT, BandwidthMeter, kind_slot, protocol_slot, wire_slot


def test_the_view_and_the_heartbeat_names() -> None:
    meter = BandwidthMeter(0.0)
    meter.count(protocol_slot("/vac/waku/relay/2.0.0", OUT), 5000)
    meter.count(protocol_slot("/ipfs/ping/1.0.0", IN), 32)
    meter.count(protocol_slot("/vac/waku/store-query/3.0.0", IN), 700)
    meter.count(wire_slot(OUT), 5400)
    meter.count(wire_slot(IN), 800)
    meter.count_message(kind_slot("chat", OUT), 3000)
    meter.count_message(kind_slot("sync", OUT), 1500)
    meter.count_message(kind_slot("contact_request", IN), 400)
    meter.count_message(kind_slot("join_request", OUT), 100)
    meter.count(kind_slot("subscriptions", IN), 40)
    view = bandwidth_view(meter.snapshot(30.0))
    assert view.uptime == 30.0
    assert [line.name for line in view.protocols][:2] == ["relay", "store"]
    assert view.transport.bytes_out == 400 and view.transport.bytes_in == 68
    relay = view.protocols[0]
    assert relay.minute_out == 5000 / 30 and relay.hour_out == 5000 / 30

    bw, kinds = heartbeat_totals(view)
    assert set(bw) == {
        "relay", "store", "filter", "lightpush", "metadata", "identify", "discovery", "other"
    }  # fmt: skip
    assert bw["relay"] == {"in": 0, "out": 5000}
    assert bw["other"] == {"in": 32 + 68, "out": 400}  # ping and the framing
    assert sum(p["out"] for p in bw.values()) == view.wire.bytes_out  # nothing lost
    assert set(kinds) == {"control", "chat", "sync", "request", "other"}
    assert kinds["request"] == {"n": 2, "bytes": 500}
    assert kinds["control"] == {"n": 0, "bytes": 40}

    meter.count_message(kind_slot("chat", IN), 1000)
    later_bw, later_kinds = heartbeat_totals(bandwidth_view(meter.snapshot(60.0)))
    assert heartbeat_delta(kinds, later_kinds)["chat"] == {"n": 1, "bytes": 1000}
    assert heartbeat_delta(bw, later_bw)["relay"] == {"in": 0, "out": 0}
    assert heartbeat_delta(later_kinds, kinds)["chat"] == {"n": 0, "bytes": 0}  # restarted
