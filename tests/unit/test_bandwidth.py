"""The bandwidth meter, sans-IO: protocol names, windows on injected time, bounded memory,
moving bytes between slots, and the classifier of relay message kinds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.waku.bandwidth import (
    BUCKETS,
    IN,
    KINDS,
    OUT,
    PROTOCOLS,
    BandwidthMeter,
    Line,
    MessageKinds,
    UnknownKind,
    kind_slot,
    protocol_index,
    protocol_slot,
    wire_slot,
)


def _line(lines: tuple[Line, ...], name: str) -> Line:
    return next(line for line in lines if line.name == name)


@pytest.mark.parametrize(
    ("protocol_id", "name"),
    [
        ("/vac/waku/relay/2.0.0", "relay"),
        ("/vac/waku/store-query/3.0.0", "store"),
        ("/vac/waku/store/2.0.0-beta4", "store"),
        ("/vac/waku/filter-subscribe/2.0.0-beta1", "filter"),
        ("/vac/waku/filter-push/2.0.0-beta1", "filter"),
        ("/vac/waku/lightpush/3.0.0", "lightpush"),
        ("/vac/waku/lightpush/2.0.0-beta1", "lightpush"),
        ("/vac/waku/metadata/1.0.0", "metadata"),
        ("/ipfs/id/1.0.0", "identify"),
        ("/ipfs/id/push/1.0.0", "identify"),
        ("/rendezvous/1.0.0", "discovery"),
        ("/vac/waku/peer-exchange/2.0.0-alpha1", "discovery"),
        ("/ipfs/ping/1.0.0", "ping"),
        ("/meshsub/1.1.0", "other"),
        (None, "other"),
    ],
)
def test_streams_are_counted_under_their_protocol(protocol_id: str | None, name: str) -> None:
    assert PROTOCOLS[protocol_index(protocol_id)] == name
    meter = BandwidthMeter(0.0)
    meter.count(protocol_slot(protocol_id, OUT), 7)
    line = _line(meter.snapshot(1.0).protocols, name)
    assert (line.bytes_in, line.bytes_out) == (0, 7)


def test_rates_cover_the_last_minute_and_hour_and_forget_what_is_older() -> None:
    meter = BandwidthMeter(100.0)
    relay_in = protocol_slot("/vac/waku/relay/2.0.0", IN)
    meter.count(relay_in, 900)  # at 100-110
    meter.roll(109.0)
    early = _line(meter.snapshot(109.0).protocols, "relay")
    minute, hour = early.rates
    assert minute.window == "minute" and minute.seconds == pytest.approx(9.0)
    assert minute.in_per_s == pytest.approx(100.0) and hour.in_per_s == pytest.approx(100.0)

    meter.roll(130.0)
    meter.count(relay_in, 300)  # at 130-140
    later = _line(meter.snapshot(135.0).protocols, "relay")
    assert later.rates[0].seconds == pytest.approx(35.0)
    assert later.rates[0].in_per_s == pytest.approx(1200 / 35)

    # 70 s later the first bucket has left the minute, the second is still in it.
    after = _line(meter.snapshot(175.0).protocols, "relay")
    assert after.rates[0].seconds == pytest.approx(55.0)  # five whole buckets and half one
    assert after.rates[0].in_per_s == pytest.approx(300 / 55)
    assert after.rates[1].in_per_s == pytest.approx(1200 / 75)
    assert after.bytes_in == 1200  # totals are since start

    # An hour and more later both are out of every window; totals stay.
    gone = _line(meter.snapshot(100.0 + 3700).protocols, "relay")
    assert [r.in_per_s for r in gone.rates] == [0.0, 0.0]
    assert gone.bytes_in == 1200


def test_a_late_roll_puts_the_bytes_in_one_bucket_and_loses_none() -> None:
    meter = BandwidthMeter(0.0, bucket_seconds=10.0)
    slot = protocol_slot("/vac/waku/store-query/3.0.0", OUT)
    meter.count(slot, 500)
    snapshot = meter.snapshot(45.0)  # nobody rolled for four buckets
    store = _line(snapshot.protocols, "store")
    assert store.bytes_out == 500
    assert store.rates[0].out_per_s * store.rates[0].seconds == pytest.approx(500)


def test_memory_is_bounded_by_the_ring_whatever_the_gap() -> None:
    meter = BandwidthMeter(0.0)
    for hour in range(1, 5):
        meter.count(wire_slot(IN), 10)
        meter.roll(hour * 3600.0 * 24)
        assert len(meter._ring) <= BUCKETS
    assert meter.snapshot(4 * 3600.0 * 24).wire.bytes_in == 40


def test_starting_again_keeps_the_totals_and_restarts_the_windows() -> None:
    meter = BandwidthMeter(0.0)
    meter.count(wire_slot(OUT), 100)
    meter.start(500.0)
    snapshot = meter.snapshot(505.0)
    assert snapshot.uptime == 5.0 and snapshot.wire.bytes_out == 100
    assert snapshot.wire.rates[0].out_per_s == 0.0


def test_transport_overhead_is_wire_minus_streams_never_negative() -> None:
    meter = BandwidthMeter(0.0)
    meter.count(wire_slot(OUT), 1000)
    meter.count(protocol_slot("/vac/waku/relay/2.0.0", OUT), 900)
    meter.count(protocol_slot("/ipfs/id/1.0.0", IN), 50)  # the wire tap missed these
    snapshot = meter.snapshot(1.0)
    assert snapshot.transport.bytes_out == 100
    assert snapshot.transport.bytes_in == 0
    assert snapshot.transport.rates[0].out_per_s == pytest.approx(100.0)


def test_moving_bytes_between_slots_never_goes_below_zero() -> None:
    meter = BandwidthMeter(0.0)
    meter.count_message(kind_slot("chat", IN), 300)
    meter.relabel(IN, "chat", "sync", 200)
    snapshot = meter.snapshot(1.0)
    chat, sync = _line(snapshot.kinds, "chat"), _line(snapshot.kinds, "sync")
    assert (chat.bytes_in, chat.messages_in, sync.bytes_in, sync.messages_in) == (100, 0, 200, 1)
    meter.relabel(IN, "chat", "sync", 5000)  # more than there is: only what there is moves
    snapshot = meter.snapshot(1.0)
    assert _line(snapshot.kinds, "chat").bytes_in == 0
    assert _line(snapshot.kinds, "sync").bytes_in == 300
    with pytest.raises(ValueError):
        meter.relabel(IN, "chat", "cat pictures", 1)


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 10_000), st.floats(0, 8000))))
def test_totals_are_the_sum_of_everything_counted(
    events: list[tuple[int, int, float]],
) -> None:
    meter = BandwidthMeter(0.0)
    now = 0.0
    for direction, nbytes, step in events:
        now += step
        meter.roll(now)
        meter.count(wire_slot(direction), nbytes)
    snapshot = meter.snapshot(now)
    assert snapshot.wire.bytes_in == sum(n for d, n, _ in events if d == IN)
    assert snapshot.wire.bytes_out == sum(n for d, n, _ in events if d == OUT)
    for rate in snapshot.wire.rates:
        assert rate.in_per_s * rate.seconds <= snapshot.wire.bytes_in + 1e-6


def test_the_classifier_names_kinds_by_content_topic() -> None:
    kinds = MessageKinds()
    kinds.set_topic("/chinwag/1/dm-abc/proto", "chat")
    kinds.set_topic("/chinwag/1/contact-3/proto", "contact_request")
    assert KINDS[kinds.kind_index(b"/chinwag/1/dm-abc/proto", outbound=False)] == "chat"
    assert KINDS[kinds.kind_index("/chinwag/1/contact-3/proto", outbound=True)] == (
        "contact_request"
    )
    assert KINDS[kinds.kind_index(b"/someone/else/proto", outbound=False)] == "message"
    assert KINDS[kinds.kind_index(None, outbound=False)] == "message"
    kinds.forget_topic("/chinwag/1/dm-abc/proto")
    assert KINDS[kinds.kind_index(b"/chinwag/1/dm-abc/proto", outbound=False)] == "message"
    with pytest.raises(UnknownKind):
        kinds.set_topic("/x", "control")  # not a kind of published message


def test_a_sending_block_names_what_goes_out_inside_it_only() -> None:
    kinds = MessageKinds()
    kinds.set_topic("/chinwag/1/dm-abc/proto", "chat")
    topic = b"/chinwag/1/dm-abc/proto"
    with kinds.sending("sync"):
        assert KINDS[kinds.kind_index(topic, outbound=True)] == "sync"
        assert KINDS[kinds.kind_index(topic, outbound=False)] == "chat"  # what comes in
        with kinds.sending("join_request"):
            assert KINDS[kinds.kind_index(topic, outbound=True)] == "join_request"
        assert KINDS[kinds.kind_index(topic, outbound=True)] == "sync"
    assert KINDS[kinds.kind_index(topic, outbound=True)] == "chat"
    with pytest.raises(UnknownKind), kinds.sending("gossip"):
        pass


def test_the_classifier_keeps_a_bounded_number_of_topics() -> None:
    kinds = MessageKinds(max_topics=2)
    for i in range(5):
        kinds.set_topic(f"/t/{i}", "chat")
    named = [KINDS[kinds.kind_index(f"/t/{i}", outbound=False)] for i in range(5)]
    assert named == ["chat", "chat", "message", "message", "message"]
    kinds.set_topic("/t/0", "sync")  # a known topic may change its kind
    assert KINDS[kinds.kind_index("/t/0", outbound=False)] == "sync"
