"""A packet delayer for kernels without sch_netem: it holds the packets that an iptables
`NFQUEUE` rule hands to userspace and lets each one go after a jittered delay, like
`tc netem delay D J` would.

Run inside the network namespace whose traffic it delays, before the NFQUEUE rule exists:

    ip netns exec NS python tests/harness/netem_fallback.py --delay-ms 1000 --jitter-ms 100

It prints `ready` once it is bound to the queue, then runs until SIGTERM/SIGINT and prints
its counters to stderr. Loss is not its business: an iptables `statistic` rule drops before
the packet is queued.

It speaks nfnetlink_queue (linux/netfilter/nfnetlink_queue.h) directly over a raw
AF_NETLINK/NETLINK_NETFILTER socket, so it needs no library: bind the queue, ask for
metadata only (the kernel keeps the packet; we only need its id), raise the queue length
and ask the kernel to let packets through when the queue is full (fail-open) rather than
drop them, then answer NF_ACCEPT per packet id when its time comes. Packets are let go in
order of their release time, so jitter reorders them as netem's does.

Memory is bounded: the kernel holds the packets (at most `--max-queued`), we hold one small
entry per packet; beyond that limit a packet is let go at once. If the socket overflows
(ENOBUFS) the kernel still holds packets we never heard of; whenever the packet we release is
the oldest we know of, we release with a batch verdict ("everything up to this id"), which
frees those too.

Stdlib only, Linux only; the encoding and the schedule are pure and unit-tested
(tests/unit/test_netem_fallback.py)."""

from __future__ import annotations

import argparse
import errno
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# ---- constants from linux/netlink.h, linux/netfilter/nfnetlink{,_queue}.h ----------------
NETLINK_NETFILTER = 12
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER

NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3

NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2

NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5

NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1 << 0

NF_ACCEPT = 1

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid (host byte order)
NLATTR = struct.Struct("=HH")  # len, type
NFGENMSG = struct.Struct("!BBH")  # family, version, res_id (big endian)
PACKET_HDR = struct.Struct("!IHB")  # packet_id, hw_protocol, hook (packed)
MAX_MESSAGE = 1 << 16
STOP_CHECK = 0.25


class NetlinkError(Exception):
    """A malformed netlink message, or an error the kernel answered with."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


# ---- encoding ---------------------------------------------------------------------------
def _align(length: int) -> int:
    return (length + 3) & ~3


def attribute(kind: int, payload: bytes) -> bytes:
    header = NLATTR.pack(NLATTR.size + len(payload), kind)
    return (header + payload).ljust(_align(NLATTR.size + len(payload)), b"\0")


def queue_message(kind: int, queue: int, seq: int, body: bytes, *, ack: bool) -> bytes:
    """One nfnetlink message to the queue subsystem: nlmsghdr, nfgenmsg, attributes."""
    payload = NFGENMSG.pack(socket.AF_UNSPEC, 0, queue) + body
    flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
    msg_type = (NFNL_SUBSYS_QUEUE << 8) | kind
    return NLMSGHDR.pack(NLMSGHDR.size + len(payload), msg_type, flags, seq, 0) + payload


def bind_requests(queue: int, max_queued: int, first_seq: int = 1) -> list[bytes]:
    """The configuration, one acknowledged message per step so a refusal names its step:
    bind, metadata-only copies, queue length, fail-open."""
    cmd = struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET)
    params = struct.pack("!IB", 0, NFQNL_COPY_META)
    flags = struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)
    bodies = [
        attribute(NFQA_CFG_CMD, cmd),
        attribute(NFQA_CFG_PARAMS, params),
        attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", max_queued)),
        attribute(NFQA_CFG_FLAGS, flags) + attribute(NFQA_CFG_MASK, flags),
    ]
    return [queue_message(NFQNL_MSG_CONFIG, queue, first_seq + i, body, ack=True)
            for i, body in enumerate(bodies)]  # fmt: skip


def unbind_request(queue: int, seq: int) -> bytes:
    cmd = struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND, socket.AF_INET)
    return queue_message(NFQNL_MSG_CONFIG, queue, seq, attribute(NFQA_CFG_CMD, cmd), ack=False)


def verdict(queue: int, packet_id: int, *, batch: bool, seq: int = 0) -> bytes:
    """NF_ACCEPT for one packet id, or (batch) for every queued packet up to that id."""
    body = attribute(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))
    kind = NFQNL_MSG_VERDICT_BATCH if batch else NFQNL_MSG_VERDICT
    return queue_message(kind, queue, seq, body, ack=False)


# ---- decoding ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    msg_type: int
    seq: int
    payload: bytes


def messages(data: bytes) -> Iterator[Message]:
    """The netlink messages in one datagram."""
    offset = 0
    while offset < len(data):
        if len(data) - offset < NLMSGHDR.size:
            raise NetlinkError(f"{len(data) - offset} trailing bytes, too short for a header")
        length, msg_type, _flags, seq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size or offset + length > len(data):
            raise NetlinkError(f"message length {length} does not fit the datagram")
        yield Message(msg_type, seq, data[offset + NLMSGHDR.size : offset + length])
        offset += _align(length)


def attributes(data: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    offset = 0
    while offset + NLATTR.size <= len(data):
        length, kind = NLATTR.unpack_from(data, offset)
        if length < NLATTR.size or offset + length > len(data):
            raise NetlinkError(f"attribute length {length} does not fit the message")
        found[kind & NLA_TYPE_MASK] = data[offset + NLATTR.size : offset + length]
        offset += _align(length)
    return found


def error_code(message: Message) -> int:
    """The (positive) errno of an NLMSG_ERROR; 0 is an acknowledgement."""
    if len(message.payload) < 4:
        raise NetlinkError("truncated error message")
    (code,) = struct.unpack_from("=i", message.payload)
    return -int(code)


def packet_id(message: Message) -> int | None:
    """The id of a queued packet, or None if the message is not a packet notification."""
    if message.msg_type != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
        return None
    header = attributes(message.payload[NFGENMSG.size :]).get(NFQA_PACKET_HDR)
    if header is None or len(header) < PACKET_HDR.size:
        raise NetlinkError("packet notification without its header")
    return int(PACKET_HDR.unpack_from(header)[0])


# ---- the schedule -----------------------------------------------------------------------
@dataclass(frozen=True)
class Release:
    packet_id: int
    batch: bool
    """True when no older packet is still held: then the verdict may cover every id up to
    this one, freeing packets whose notifications were lost."""


@dataclass
class DelaySchedule:
    """Which packet goes when. Pure: times are passed in, the delay comes from `draw`."""

    delay: float
    jitter: float
    limit: int
    draw: Callable[[float, float], float] = random.uniform
    _due: list[tuple[float, int]] = field(default_factory=list)
    _ids: list[int] = field(default_factory=list)
    _held: set[int] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, packet: int, now: float) -> list[Release]:
        """Take a packet; what must go at once (nothing, unless we are full)."""
        if packet in self._held:
            return []
        if len(self._held) >= self.limit:
            return [self._release(packet)]
        wait = max(0.0, self.delay + self.draw(-self.jitter, self.jitter))
        self._held.add(packet)
        heapq.heappush(self._due, (now + wait, packet))
        heapq.heappush(self._ids, packet)
        return []

    def due(self, now: float) -> list[Release]:
        gone: list[Release] = []
        while self._due and self._due[0][0] <= now:
            _, packet = heapq.heappop(self._due)
            self._held.discard(packet)
            gone.append(self._release(packet))
        return gone

    def next_deadline(self) -> float | None:
        return self._due[0][0] if self._due else None

    def _release(self, packet: int) -> Release:
        while self._ids and self._ids[0] not in self._held:
            heapq.heappop(self._ids)  # ids already released
        return Release(packet, batch=not self._ids or self._ids[0] > packet)


# ---- the driver -------------------------------------------------------------------------
@dataclass
class Counters:
    queued: int = 0
    released: int = 0
    overflowed: int = 0
    lost_notifications: int = 0
    refused_verdicts: int = 0


def _configure(sock: socket.socket, queue: int, max_queued: int) -> None:
    for request in bind_requests(queue, max_queued):
        sock.send(request)
        (seq,) = struct.unpack_from("=I", request, 8)
        while True:
            reply = [m for m in messages(sock.recv(MAX_MESSAGE)) if m.seq == seq]
            if reply:
                break
        if reply[0].msg_type == NLMSG_ERROR and (code := error_code(reply[0])):
            raise NetlinkError(f"configuring queue {queue}: {os.strerror(code)}", code)


def run(queue: int, delay: float, jitter: float, max_queued: int) -> Counters:
    schedule = DelaySchedule(delay, jitter, max_queued)
    counters = Counters()
    stop = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: we are root
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((0, 0))
    _configure(sock, queue, max_queued)
    print("ready", flush=True)

    def send(releases: list[Release]) -> None:
        for release in releases:
            sock.send(verdict(queue, release.packet_id, batch=release.batch))
            counters.released += 1

    while not stop:
        deadline = schedule.next_deadline()
        # Capped so that a stop request (select resumes after a signal) is seen soon.
        timeout = STOP_CHECK if deadline is None else deadline - time.monotonic()
        readable, _, _ = select.select([sock], [], [], min(STOP_CHECK, max(0.0, timeout)))
        if readable:
            try:
                data = sock.recv(MAX_MESSAGE)
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                counters.lost_notifications += 1  # batch verdicts will free those packets
                continue
            for message in messages(data):
                if message.msg_type == NLMSG_ERROR:
                    # e.g. ENOENT: the kernel flushed the packet when its device went down
                    counters.refused_verdicts += error_code(message) != 0
                    continue
                packet = packet_id(message)
                if packet is None:
                    continue
                counters.queued += 1
                at_once = schedule.hold(packet, time.monotonic())
                counters.overflowed += len(at_once)
                send(at_once)
        send(schedule.due(time.monotonic()))
    send(schedule.due(float("inf")))  # let everything held go before we leave
    sock.send(unbind_request(queue, seq=0))
    sock.close()
    return counters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", type=int, default=0, help="NFQUEUE number (default 0)")
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--max-queued", type=int, default=4096,
                        help="packets held at most; more are let through at once")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        counters = run(args.queue, args.delay_ms / 1000, args.jitter_ms / 1000, args.max_queued)
    except (OSError, NetlinkError) as exc:
        print(f"netem_fallback: {exc}", file=sys.stderr)
        return 1
    print(f"netem_fallback: {counters}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
