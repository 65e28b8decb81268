"""Relay bytes by what they carry, for the bandwidth meter (chat/waku/bandwidth.py).

Each RPC frame is split by its top-level fields: subscriptions, published messages (each
counted under the kind the meter's classifier gives its content topic) and control (IHAVE,
IWANT, GRAFT, PRUNE, IDONTWANT). The scan walks field headers only (tags and lengths, a few
per frame) and never decodes a protobuf; a frame that does not scan counts as control for
the rest of its bytes (the router refuses it and counts it anyway). The length prefix counts
with the frame's first part.

Forwarded and published frames are one bytes object sent to every mesh peer: the parts of
the last outbound frame are remembered, so the same frame is scanned once.
"""

from __future__ import annotations

from chat.waku.bandwidth import IN, KIND_SLOT_BASE, KINDS, OUT, BandwidthMeter

_CONTROL = KINDS.index("control")
_SUBSCRIPTIONS = KINDS.index("subscriptions")

_WIRE_LENGTH = 2  # protobuf wire type: length-delimited
_RPC_SUBSCRIPTIONS = 1
_RPC_PUBLISH = 2
_RPC_CONTROL = 3
_MESSAGE_DATA = 2
_WAKU_CONTENT_TOPIC = 2


class _ScanError(Exception):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    if pos < len(buf) and buf[pos] < 0x80:  # tags and short lengths: one byte
        return buf[pos], pos + 1
    value = 0
    shift = 0
    end = len(buf)
    while pos < end and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise _ScanError


def _skip(buf: bytes, pos: int, wire_type: int, end: int) -> int:
    if wire_type == 0:
        return _varint(buf, pos)[1]
    if wire_type == 1:
        return pos + 8
    if wire_type == _WIRE_LENGTH:
        size, pos = _varint(buf, pos)
        return pos + size
    if wire_type == 5:
        return pos + 4
    raise _ScanError


def _field(buf: bytes, start: int, end: int, wanted: int) -> tuple[int, int] | None:
    """(start, end) of the first length-delimited field `wanted` in buf[start:end]."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if number == wanted and wire_type == _WIRE_LENGTH:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise _ScanError
            return pos, pos + size
        pos = _skip(buf, pos, wire_type, end)
    return None


def content_topic_of(message: bytes, start: int, end: int) -> bytes | None:
    """The WakuMessage content topic inside a pubsub Message at message[start:end]."""
    data = _field(message, start, end, _MESSAGE_DATA)
    if data is None:
        return None
    topic = _field(message, data[0], data[1], _WAKU_CONTENT_TOPIC)
    if topic is None:
        return None
    return message[topic[0] : topic[1]]


def _lone_message_topic(frame: bytes, start: int) -> bytes | None:
    """The content topic of an RPC at frame[start:] that is one published message and
    nothing else, laid out as every relay writes it (data before topic, payload before
    content topic, lengths under 2 MiB); None for anything else, which takes the general
    scan. Inline varints: most frames are this shape, and each call costs."""
    end = len(frame)
    if end - start < 8 or frame[start] != 0x12:  # RPC.publish
        return None
    pos = start + 1
    size = 0
    shift = 0
    while pos < end and shift < 21:  # the Message's length
        byte = frame[pos]
        pos += 1
        size |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    else:
        return None
    if pos + size != end or frame[pos] != 0x12:  # the whole frame; Message.data first
        return None
    pos += 1
    data_size = 0
    shift = 0
    while pos < end and shift < 21:
        byte = frame[pos]
        pos += 1
        data_size |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    else:
        return None
    data_end = pos + data_size
    if data_end > end or pos >= data_end or frame[pos] != 0x0A:  # WakuMessage.payload
        return None
    pos += 1
    payload = 0
    shift = 0
    while pos < data_end and shift < 21:
        byte = frame[pos]
        pos += 1
        payload |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    else:
        return None
    pos += payload
    if pos + 2 > data_end or frame[pos] != 0x12:  # WakuMessage.content_topic
        return None
    topic_size = frame[pos + 1]
    topic_start = pos + 2
    if topic_size >= 0x80 or topic_start + topic_size > data_end:
        return None
    return frame[topic_start : topic_start + topic_size]


def frame_parts(
    frame: bytes, start: int, meter: BandwidthMeter, outbound: bool
) -> list[tuple[int, int, bool]]:
    """(kind index, bytes, is a message) for each top-level part of the RPC at frame[start:];
    the bytes before `start` (a length prefix) go with the first part."""
    topic = _lone_message_topic(frame, start)
    if topic is not None:
        return [(meter.kinds.kind_index(topic, outbound), len(frame), True)]
    parts: list[tuple[int, int, bool]] = []
    pos = start
    end = len(frame)
    carried = start
    part_start = start
    try:
        while pos < end:
            part_start = pos
            key, pos = _varint(frame, pos)
            number, wire_type = key >> 3, key & 7
            if wire_type != _WIRE_LENGTH:
                raise _ScanError
            size, pos = _varint(frame, pos)
            body_end = pos + size
            if body_end > end:
                raise _ScanError
            nbytes = body_end - part_start + carried
            if number == _RPC_PUBLISH:
                topic = content_topic_of(frame, pos, body_end)  # may raise: carried kept
                parts.append((meter.kinds.kind_index(topic, outbound), nbytes, True))
            elif number == _RPC_SUBSCRIPTIONS:
                parts.append((_SUBSCRIPTIONS, nbytes, False))
            else:
                parts.append((_CONTROL, nbytes, number == _RPC_CONTROL))
            carried = 0
            pos = body_end
    except _ScanError:
        parts.append((_CONTROL, end - part_start + carried, False))
        return parts
    if carried:
        parts.append((_CONTROL, carried, False))
    return parts


def _prefix_length(size: int) -> int:
    length = 1
    while size >= 0x80:
        size >>= 7
        length += 1
    return length


class RelayTraffic:
    """Counts relay frames by kind into a meter; one per relay driver."""

    __slots__ = ("_last_frame", "_last_parts", "_meter")

    def __init__(self, meter: BandwidthMeter) -> None:
        self._meter = meter
        self._last_frame: bytes | None = None
        self._last_parts: list[tuple[int, int, bool]] = []

    def sent(self, frame: bytes) -> None:
        """A length-prefixed frame queued for a peer."""
        if frame is self._last_frame:
            parts = self._last_parts
        else:
            _, start = _prefix_end(frame)
            parts = frame_parts(frame, start, self._meter, outbound=True)
            self._last_frame = frame
            self._last_parts = parts
        self._count(parts, OUT)

    def received(self, frame: bytes) -> None:
        """A frame read from a peer, without its length prefix."""
        prefix = _prefix_length(len(frame))
        parts = frame_parts(frame, 0, self._meter, outbound=False)
        if parts:
            kind, nbytes, is_message = parts[0]
            parts[0] = (kind, nbytes + prefix, is_message)
        else:
            parts = [(_CONTROL, prefix, False)]
        self._count(parts, IN)

    def _count(self, parts: list[tuple[int, int, bool]], direction: int) -> None:
        meter = self._meter
        base = KIND_SLOT_BASE + direction
        for kind, nbytes, is_message in parts:
            if is_message:
                meter.count_message(base + kind * 2, nbytes)
            else:
                meter.count(base + kind * 2, nbytes)


def _prefix_end(frame: bytes) -> tuple[int, int]:
    try:
        return _varint(frame, 0)
    except _ScanError:
        return 0, 0


def published_frame_size(pubsub_topic: str, data_size: int) -> int:
    """The bytes of a relay frame carrying one message, as relays forward them, length
    prefix included: what moves when a message counted on arrival turns out to be of
    another kind."""
    topic = len(pubsub_topic.encode())
    body = 1 + _prefix_length(data_size) + data_size + 1 + _prefix_length(topic) + topic
    rpc = 1 + _prefix_length(body) + body
    return _prefix_length(rpc) + rpc
