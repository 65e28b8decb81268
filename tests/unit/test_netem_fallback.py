"""The NFQUEUE delayer's pure parts (tests/harness/netem_fallback.py): its nfnetlink
encoding against the layouts of linux/netfilter/nfnetlink_queue.h, and its schedule. That it
really delays packets is checked across a veth in tests/integration/connectivity/test_netns.py."""

from __future__ import annotations

import socket
import struct

import pytest
from harness.netem_fallback import (
    NLMSG_ERROR,
    DelaySchedule,
    Message,
    NetlinkError,
    Release,
    attribute,
    attributes,
    bind_requests,
    error_code,
    messages,
    packet_id,
    verdict,
)


def header(data: bytes) -> tuple[int, int, int, int, int]:
    fields: tuple[int, int, int, int, int] = struct.unpack_from("=IHHII", data)
    return fields


def packet_notification(pid: int, seq: int = 0) -> bytes:
    """What the kernel sends for a queued packet (copy-meta: header and a few attributes)."""
    body = (
        struct.pack("!BBH", socket.AF_INET, 0, 7)
        + attribute(1, struct.pack("!IHB", pid, 0x0800, 3))  # NFQA_PACKET_HDR, hook OUTPUT
        + attribute(6, struct.pack("!I", 4))  # NFQA_IFINDEX_OUTDEV
    )
    return struct.pack("=IHHII", 16 + len(body), 0x0300, 0, seq, 0) + body


def test_attributes_are_padded_to_four_bytes() -> None:
    assert attribute(3, b"\x01") == b"\x05\x00\x03\x00\x01\x00\x00\x00"
    assert attribute(3, b"\x01\x02\x03\x04") == b"\x08\x00\x03\x00\x01\x02\x03\x04"


def test_the_bind_sequence_binds_asks_for_metadata_raises_the_length_and_fails_open() -> None:
    requests = bind_requests(queue=7, max_queued=4096, first_seq=10)
    assert len(requests) == 4
    for seq, request in enumerate(requests, start=10):
        length, msg_type, flags, got_seq, _ = header(request)
        assert (length, msg_type, flags, got_seq) == (len(request), 0x0302, 0x1 | 0x4, seq)
        assert request[16:20] == b"\x00\x00\x00\x07"  # AF_UNSPEC, version 0, queue 7 (BE)
    bind, params, maxlen, flags = (attributes(r[20:]) for r in requests)
    assert bind == {1: bytes([1, 0]) + struct.pack("!H", socket.AF_INET)}
    assert params == {2: struct.pack("!IB", 0, 1)}  # copy_range 0, NFQNL_COPY_META
    assert maxlen == {3: struct.pack("!I", 4096)}
    assert flags == {5: struct.pack("!I", 1), 4: struct.pack("!I", 1)}  # FAIL_OPEN and its mask


def test_verdicts_accept_one_packet_or_every_packet_up_to_an_id() -> None:
    single = verdict(7, 0x01020304, batch=False)
    _, msg_type, flags, _, _ = header(single)
    assert (msg_type, flags) == (0x0301, 0x1)
    assert attributes(single[20:]) == {2: struct.pack("!II", 1, 0x01020304)}  # NF_ACCEPT
    assert header(verdict(7, 5, batch=True))[1] == 0x0303


def test_packet_ids_are_read_from_notifications_and_others_are_ignored() -> None:
    data = packet_notification(41) + packet_notification(42, seq=3)
    found = list(messages(data))
    assert [packet_id(m) for m in found] == [41, 42]
    assert packet_id(Message(0x0302, 0, b"\0" * 4)) is None


def test_an_error_message_carries_the_errno() -> None:
    ack = Message(NLMSG_ERROR, 1, struct.pack("=i", 0) + b"\0" * 16)
    refused = Message(NLMSG_ERROR, 1, struct.pack("=i", -2) + b"\0" * 16)
    assert (error_code(ack), error_code(refused)) == (0, 2)


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x02",  # shorter than a header
        struct.pack("=IHHII", 64, 0x0300, 0, 0, 0),  # claims more than there is
        struct.pack("=IHHII", 8, 0x0300, 0, 0, 0),  # claims less than its own header
    ],
)
def test_malformed_datagrams_are_typed_errors(data: bytes) -> None:
    with pytest.raises(NetlinkError):
        list(messages(data))


def test_a_notification_without_its_packet_header_is_an_error() -> None:
    body = struct.pack("!BBH", 2, 0, 0) + attribute(6, b"\0\0\0\1")
    with pytest.raises(NetlinkError):
        packet_id(Message(0x0300, 0, body))
    with pytest.raises(NetlinkError):
        attributes(b"\x40\x00\x01\x00")  # an attribute longer than the message


def fixed(offset: float) -> DelaySchedule:
    return DelaySchedule(delay=1.0, jitter=0.1, limit=3, draw=lambda low, high: offset)


def test_packets_go_after_the_delay_in_order_of_their_release_time() -> None:
    draws = iter([0.1, -0.1, 0.0])
    schedule = DelaySchedule(1.0, 0.1, limit=10, draw=lambda low, high: next(draws))
    for pid, at in ((1, 0.0), (2, 0.05), (3, 0.1)):
        assert schedule.hold(pid, at) == []
    assert schedule.next_deadline() == pytest.approx(0.95)
    assert schedule.due(0.94) == []
    # 2 overtakes 1 (jitter reorders, as netem's does); 1 is still held, so no batch for 2.
    assert schedule.due(0.96) == [Release(2, batch=False)]
    assert schedule.due(1.1) == [Release(1, batch=True), Release(3, batch=True)]
    assert len(schedule) == 0 and schedule.next_deadline() is None


def test_the_jitter_is_drawn_within_plus_minus_jitter() -> None:
    bounds: list[tuple[float, float]] = []

    def draw(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    schedule = DelaySchedule(1.0, 0.1, limit=10, draw=draw)
    schedule.hold(1, 5.0)
    assert bounds == [(-0.1, 0.1)] and schedule.next_deadline() == pytest.approx(6.1)


def test_when_full_a_packet_goes_at_once_and_duplicates_are_ignored() -> None:
    schedule = fixed(0.0)
    for pid in (1, 2, 3):
        schedule.hold(pid, 0.0)
    assert schedule.hold(2, 0.0) == []
    assert schedule.hold(4, 0.0) == [Release(4, batch=False)]  # 1..3 are older and held
    assert len(schedule) == 3
    assert [r.packet_id for r in schedule.due(1.0)] == [1, 2, 3]
