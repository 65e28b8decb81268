"""Private-group benchmark: send → displayed at every member, bytes on the wire per message,
and the cost of a key rotation after a removal, beside the same members chatting 1:1.

One process, real parts: a service node (relay + store) on 127.0.0.1 and one messenger per
member (the façade of chat/messenger/, each with its own py-libp2p client node and its own
SQLCipher profile), every member connected to the service node only. The admin befriends
everyone (contact requests on the wire), creates the group, every member accepts its
invitation; one warm-up message per member puts every Megolm key in place.

Phases, each printed as one JSON line (`"bench": ...`):
- `groups_send_to_displayed`: `--messages` group messages from every member in turn, paced
  at `--rate`; for each, the time from the `send_text` call to the `MessageAdded` event at
  each other member (what a face draws), p50/p99 over every (message, member), and to the
  last member; the time to `delivered` (every member acknowledged) at the sender.
- `groups_direct_fanout`: the same members, the admin sending the same text 1:1 to each
  (what a client without groups would do), `--fanout-rounds` times: the same figures.
- `groups_bytes_on_wire`: bytes per message counted where they leave the process's TCP
  sockets (after Noise and yamux: every byte each node wrote, the service node's fan-out
  apart) and as relay RPC frames queued to peers, for the group, the 1:1 fan-out and a
  plain relay publish of payloads of the group envelope's size; an idle window's rate is
  measured first and reported (heartbeats, health pings).
- `groups_key_rotation`: a group of `--rotation-members`; steady round (every member
  sends one message), then the admin removes a member and every remaining member sends
  one message: each one's first envelope after the removal is a new Megolm session with
  its key for every other member over Olm. Sizes, sealing time, time until displayed
  everywhere and bytes on the wire, steady against rotating; and how many of the messages
  after the removal the removed member's node could not decrypt. (tests/bench/group_rotation.py
  measures the same rotation at 50 members without sockets: CPU per member, shares, bytes.)

Prints JSON lines; `--quick` is what CI runs (small sizes). Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(REPO))  # this folder's storage.py must not hide the storage package
sys.path.append(str(REPO / "tests"))

import trio  # noqa: E402
from harness.group_network import (  # noqa: E402
    ADD_BATCH,
    Member,
    Seal,
    SealLog,
    Sent,
    WireCounter,
    all_delivered,
    all_displayed,
    befriend,
    form_group,
    group_network,
    latencies,
    send_round,
)
from harness.waiting import wait_until  # noqa: E402

from chat.client_node import ClientNode  # noqa: E402
from chat.messenger.conversation import waku_message  # noqa: E402
from chat.waku.message import WakuMessage  # noqa: E402

TEXT = "the quick brown fox jumps over the lazy dog, again and again"  # 60 bytes
PLAINTEXT_BYTES = len(TEXT) + 6  # with the " 00042" each message ends with
PLAIN_TOPIC = "/chinwag-bench/1/plain/proto"
"""Content topic of the plain relay publishes: on the shard, watched by no chat."""
TCP = ("tcp_by_service", "tcp_by_members")

log = logging.getLogger("groups-bench")
WIRE = WireCounter()
SEALS = SealLog()
RELAY_COUNTS: list[Callable[[], dict[str, int]]] = []
"""The running network's Network.relay_counts (one, once it runs)."""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float], prefix: str) -> dict[str, float | None]:
    if not values:
        return {f"{prefix}p50_ms": None, f"{prefix}p99_ms": None, f"{prefix}max_ms": None}
    return {
        f"{prefix}p50_ms": round(statistics.median(values), 1),
        f"{prefix}p99_ms": round(percentile(values, 0.99), 1),
        f"{prefix}max_ms": round(max(values), 1),
    }


def median_int(values: list[int]) -> int | None:
    return int(statistics.median(values)) if values else None


def envelopes(seals: list[Seal], prefix: str) -> dict[str, Any]:
    """Sizes of group envelopes as sealed, and what sealing them took."""
    shared = [s for s in seals if s.shares]
    return {
        f"{prefix}envelope_bytes_median": median_int([s.envelope for s in seals]),
        f"{prefix}envelope_bytes_max": max((s.envelope for s in seals), default=None),
        f"{prefix}sds_frame_bytes_median": median_int([s.frame for s in seals]),
        f"{prefix}ciphertext_bytes_median": median_int([s.ciphertext for s in seals]),
        f"{prefix}shares_per_envelope": (
            round(sum(s.shares for s in seals) / len(seals), 2) if seals else None
        ),
        f"{prefix}bytes_per_share_median": median_int(
            [round(s.share_bytes / s.shares) for s in shared]
        ),
        f"{prefix}seal_ms_median": (
            round(statistics.median(s.seconds * 1000 for s in seals), 2) if seals else None
        ),
        f"{prefix}seal_ms_max": round(max(s.seconds * 1000 for s in seals), 2) if seals else None,
    }


# ==== windows of bytes =========================================================================
@dataclass
class Window:
    """Bytes counted over a phase, and how long it lasted."""

    counter: WireCounter
    before: dict[str, int] = field(default_factory=dict)
    got: dict[str, int] = field(default_factory=dict)
    relay_before: dict[str, int] = field(default_factory=dict)
    relay: dict[str, int] = field(default_factory=dict)
    """How relay carried the window's messages (Network.relay_counts), when it runs."""
    started: float = 0.0
    ended: float = 0.0

    def __enter__(self) -> Window:
        self.before = self.counter.snapshot()
        self.relay_before = RELAY_COUNTS[0]() if RELAY_COUNTS else {}
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self.counter.snapshot()
        self.got = {k: after[k] - self.before[k] for k in after}
        if RELAY_COUNTS:
            relay_after = RELAY_COUNTS[0]()
            self.relay = {k: relay_after[k] - self.relay_before[k] for k in relay_after}
        self.ended = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def tcp(self) -> int:
        return sum(self.got[k] for k in TCP)

    def per(self, count: int, idle_tcp_per_s: float) -> dict[str, float]:
        """Bytes per message (or round) over the window; `less_idle` takes off what the
        same length of idle time carries (heartbeats, pings)."""
        idle = idle_tcp_per_s * self.seconds
        return {
            "tcp_bytes": round(self.tcp / count),
            "tcp_bytes_less_idle": round(max(0.0, self.tcp - idle) / count),
            "tcp_bytes_written_by_service": round(self.got["tcp_by_service"] / count),
            "tcp_bytes_written_by_members": round(self.got["tcp_by_members"] / count),
            "relay_frames": round(self.got["relay_frames"] / count, 1),
            "relay_frame_bytes": round(self.got["relay_bytes"] / count),
            "window_s": round(self.seconds, 2),
        }


async def idle_rate(seconds: float) -> float:
    """TCP bytes a second while nobody sends anything."""
    with Window(WIRE) as window:
        await trio.sleep(seconds)
    return window.tcp / window.seconds


# ==== phases ===================================================================================
async def group_phase(
    group_id: str, everyone: list[Member], messages: int, rate: float, limit: float
) -> tuple[dict[str, Any], Window, list[Seal]]:
    """`messages` group messages, every member sending in turn."""
    with Window(WIRE) as window:
        sent: Sent = {}
        for i in range(messages):
            sender = everyone[i % len(everyone)]
            started = time.perf_counter()
            view = await sender.messenger.send_text(group_id, f"{TEXT} {i:05d}")
            sent[view.id] = (sender, started)
            await trio.sleep(1 / rate)
        await all_displayed(sent, everyone, limit)
        delivered_all = await all_delivered(sent, limit)
    each, last, delivered = latencies(sent, everyone)
    seals = SEALS.first(sent)
    publishes = [s for m in everyone for s in m.group_publishes(window.started, window.ended)]
    line = {
        "bench": "groups_send_to_displayed",
        "members": len(everyone),
        "messages": messages,
        "rate_per_s": rate,
        "displayed": len(each),
        "expected": messages * (len(everyone) - 1),
        **summary(each, ""),
        **summary(last, "all_members_"),
        **summary(delivered, "delivered_"),
        "delivered": len(delivered),
        "all_delivered": delivered_all,
        "group_publishes_per_message": round(len(publishes) / messages, 2),
        "syncs_sealed": len(SEALS.syncs_between(window.started, window.ended)),
        "relay": window.relay,
    }
    return line, window, seals


async def fanout_phase(
    admin: Member, others: list[Member], chats: dict[str, str], rounds: int, rate: float,
    limit: float,
) -> tuple[dict[str, Any], Window]:  # fmt: skip
    """The admin sends the same text to each member 1:1, `rounds` times; a round's latency
    counts from its first send_text call."""
    with Window(WIRE) as window:
        sent: dict[str, float] = {}
        round_of: dict[str, float] = {}
        for i in range(rounds):
            started = time.perf_counter()
            for member in others:
                called = time.perf_counter()
                view = await admin.messenger.send_text(chats[member.key], f"{TEXT} {i:05d}")
                sent[view.id] = called
                round_of[view.id] = started
            await trio.sleep(1 / rate)
        await wait_until(
            lambda: all(any(m in o.shown for o in others) for m in sent),
            limit,
            what="every 1:1 message displayed",
        )
        delivered_all = await all_delivered({m: (admin, t) for m, t in sent.items()}, limit)
    each: list[float] = []
    by_round: dict[float, list[float]] = {}
    delivered: list[float] = []
    for message_id, called in sent.items():
        shown = next(o.shown[message_id] for o in others if message_id in o.shown)
        started = round_of[message_id]
        each.append((shown - started) * 1000)
        by_round.setdefault(started, []).append((shown - started) * 1000)
        if message_id in admin.delivered:
            delivered.append((admin.delivered[message_id] - called) * 1000)
    published = [
        size
        for at, topic, size in admin.published
        if window.started <= at <= window.ended and "/group-" not in topic
    ]
    line = {
        "bench": "groups_direct_fanout",
        "members": len(others) + 1,
        "rounds": rounds,
        "messages": len(sent),
        "rate_per_s": rate,
        "displayed": len(each),
        "expected": rounds * len(others),
        **summary(each, ""),
        **summary([max(v) for v in by_round.values()], "all_members_"),
        **summary(delivered, "delivered_"),
        "delivered": len(delivered),
        "all_delivered": delivered_all,
        "direct_message_bytes_median": median_int(published),
        "admin_publishes_per_round": round(len(published) / rounds, 2),
        "relay": window.relay,
    }
    return line, window


PLAIN_ARRIVALS: dict[int, list[tuple[int, float]]] = {}
"""A plain publish's number → (node, when) it reached each node (relay's delivery; the
publisher's own node delivers it too, at once)."""


def measure_plain_arrivals() -> None:
    """Every client node records when a plain publish reaches it (before the members start:
    a node hands relay its sink when it is built)."""
    original = ClientNode._on_relay

    def recording(self: ClientNode, pubsub_topic: str, message: WakuMessage, data: bytes) -> None:
        if message.content_topic == PLAIN_TOPIC and len(message.payload) >= 4:
            number = int.from_bytes(message.payload[:4], "big")
            PLAIN_ARRIVALS.setdefault(number, []).append((id(self), time.perf_counter()))
        original(self, pubsub_topic, message, data)

    ClientNode._on_relay = recording  # type: ignore[method-assign]


async def plain_phase(
    admin: Member, receivers: int, size: int, messages: int, rate: float, limit: float
) -> tuple[dict[str, Any], Window]:
    """The admin's node publishes `messages` payloads of `size` bytes on the shard, paced
    like the group's messages; nothing answers them. Latency: to each other member's node."""
    messenger = admin.messenger
    sent_at: dict[int, float] = {}
    own = id(messenger.node)

    def arrivals(number: int) -> list[float]:
        return [at for node, at in PLAIN_ARRIVALS.get(number, ()) if node != own]

    with Window(WIRE) as window:
        for i in range(messages):
            payload = i.to_bytes(4, "big") + bytes(max(0, size - 4))
            message = waku_message(PLAIN_TOPIC, payload, time.time())
            sent_at[i] = time.perf_counter()
            messenger.node.publish(messenger.pubsub_topic, message)
            await trio.sleep(1 / rate)
        with trio.move_on_after(limit):
            await wait_until(lambda: all(len(arrivals(i)) >= receivers for i in sent_at), limit)
        await trio.sleep(1.0)  # the last copies leave the service node
    each = [(t - sent_at[i]) * 1000 for i in sent_at for t in arrivals(i)]
    last = [
        (max(arrivals(i)) - sent_at[i]) * 1000 for i in sent_at if len(arrivals(i)) >= receivers
    ]
    line = {
        "bench": "groups_plain_relay",
        "members": receivers + 1,
        "messages": messages,
        "payload_bytes": size,
        "rate_per_s": rate,
        "arrived": len(each),
        "expected": messages * receivers,
        **summary(each, ""),
        **summary(last, "all_members_"),
        "relay": window.relay,
    }
    return line, window


async def rotation_phase(
    group_id: str, everyone: list[Member], removed: Member, rate: float, limit: float
) -> dict[str, Any]:
    """A steady round (every member but `removed` sends one message), the admin removes
    `removed`, then the same round again: each sender's first envelope is a new session."""
    admin, rest = everyone[0], [m for m in everyone if m is not removed]
    log.info("rotation: steady round")
    with Window(WIRE) as steady_window:
        steady = await send_round(group_id, rest, TEXT, rate, limit)
        await all_delivered(steady, limit)
    _, steady_last, _ = latencies(steady, rest)

    shown_before = set(removed.shown)
    undecryptable_before = (await removed.messenger.group(group_id)).undecryptable
    log.info("rotation: removing %s", removed.name)
    with Window(WIRE) as removal_window:
        await admin.messenger.remove_group_member(group_id, removed.key)
        removal_id = ""

        def removal_shown() -> bool:
            nonlocal removal_id
            found = [
                {i for i, (kind, text) in m.kinds.items()
                 if kind == "system" and "removed" in text and m.shown[i] >= removal_window.started}
                for m in rest[1:]
            ]  # fmt: skip
            if not all(found):
                return False
            removal_id = next(iter(found[0]))
            return True

        await wait_until(removal_shown, limit, what="the removal shown at every member")
    log.info("rotation: the round after the removal")
    with Window(WIRE) as rotation_window:
        rotating = await send_round(group_id, rest, TEXT, rate, limit)
        await all_delivered(rotating, limit)
    _, rotating_last, _ = latencies(rotating, rest)
    await trio.sleep(2.0)  # what reaches the removed member's node has reached it
    view = await removed.messenger.group(group_id)
    return {
        "bench": "groups_key_rotation",
        "members": len(everyone),
        "messages_per_round": len(rest),
        **envelopes(SEALS.first(steady), "steady_"),
        **envelopes(SEALS.first([removal_id]), "removal_frame_"),
        **envelopes(SEALS.first(rotating), "rotation_"),
        "removal_shown_everywhere_ms": round(removal_window.seconds * 1000, 1),
        **summary(steady_last, "steady_all_members_"),
        **summary(rotating_last, "rotation_all_members_"),
        "steady_round_tcp_bytes": steady_window.tcp,
        "removal_tcp_bytes": removal_window.tcp,
        "rotation_round_tcp_bytes": rotation_window.tcp,
        "steady_round_s": round(steady_window.seconds, 2),
        "rotation_round_s": round(rotation_window.seconds, 2),
        "steady_relay": steady_window.relay,
        "removal_relay": removal_window.relay,
        "rotation_relay": rotation_window.relay,
        "removed_member_undecryptable": view.undecryptable - undecryptable_before,
        "removed_member_texts_displayed_after": sum(
            removed.kinds[i][0] == "text" for i in set(removed.shown) - shown_before
        ),
    }


# ==== the run ==================================================================================
@dataclass(frozen=True)
class Sizes:
    members: int
    messages: int
    rate: float
    fanout_rounds: int
    rotation_members: int
    idle_seconds: float
    limit: float
    invite_at_once: bool = False
    services: int = 1
    """Service nodes, meshed; members spread over them (tests/harness/group_network.py says
    why more than 14 members on one relay lose messages to gossip until a store scan)."""


async def setup_group(
    name: str, admin: Member, others: list[Member], sizes: Sizes
) -> tuple[str, dict[str, Any]]:
    """The group formed on the wire, and one warm-up message from each member (every
    Megolm key in place and confirmed)."""
    started = time.perf_counter()
    adds: list[float] = []
    group_id = await form_group(
        name, admin, others, sizes.limit, at_once=sizes.invite_at_once, adds=adds
    )
    formed = time.perf_counter()
    log.info("%s: formed with %d members; warm-up round", name, len(others) + 1)
    warm = await send_round(group_id, [admin, *others], TEXT, sizes.rate, sizes.limit)
    delivered = await all_delivered(warm, sizes.limit)
    _, last, _ = latencies(warm, [admin, *others])
    return group_id, {
        "bench": "groups_setup",
        "members": len(others) + 1,
        "invited": "at once" if sizes.invite_at_once else f"{ADD_BATCH} at a time",
        "form_s": round(formed - started, 1),
        **summary([a * 1000 for a in adds], "add_batch_"),
        "warm_up_s": round(time.perf_counter() - formed, 1),
        "warm_up_delivered": delivered,
        **summary(last, "warm_up_all_members_"),
        **envelopes(SEALS.first(warm), "warm_up_"),
    }


async def run(sizes: Sizes, base: Path, out: Callable[[dict[str, Any]], None]) -> None:
    WIRE.install()
    SEALS.install()
    measure_plain_arrivals()
    started = time.perf_counter()
    async with group_network(base, WIRE, sizes.services) as net:
        RELAY_COUNTS.append(net.relay_counts)
        everyone = [await net.start_member(f"member{i:02d}") for i in range(sizes.members)]
        await net.meshed(everyone, sizes.limit)
        admin, others = everyone[0], everyone[1:]
        chats = await befriend(admin, others, sizes.limit)
        group_id, setup = await setup_group("bench", admin, others, sizes)
        out(setup)
        idle = await idle_rate(sizes.idle_seconds)

        line, group_window, seals = await group_phase(
            group_id, everyone, sizes.messages, sizes.rate, sizes.limit
        )
        out(line)
        fan_line, fan_window = await fanout_phase(
            admin, others, chats, sizes.fanout_rounds, sizes.rate, sizes.limit
        )
        out(fan_line)
        envelope = int(statistics.median(s.envelope for s in seals))
        plain_line, plain = await plain_phase(
            admin, len(others), envelope, sizes.messages, sizes.rate, sizes.limit
        )
        out(plain_line)
        out({
            "bench": "groups_bytes_on_wire",
            "members": sizes.members,
            "plaintext_bytes": PLAINTEXT_BYTES,
            **envelopes(seals, "group_"),
            "idle_tcp_bytes_per_s": round(idle),
            "group_per_message": group_window.per(sizes.messages, idle),
            "direct_fanout_per_round": fan_window.per(sizes.fanout_rounds, idle),
            "plain_relay_per_message": plain.per(sizes.messages, idle),
        })  # fmt: skip

        log.info("starting %d more members", sizes.rotation_members - sizes.members)
        extra = [
            await net.start_member(f"member{i:02d}")
            for i in range(sizes.members, sizes.rotation_members)
        ]
        await net.meshed(extra, sizes.limit)
        log.info("befriending them")
        await befriend(admin, extra, sizes.limit)
        big = [*everyone, *extra]
        big_id, setup = await setup_group("rotation", admin, big[1:], sizes)
        out(setup)
        out(await rotation_phase(big_id, big, big[-1], sizes.rate, sizes.limit))
    out({"bench": "groups_done", "wall_s": round(time.perf_counter() - started, 1)})


def emit(line: dict[str, Any]) -> None:
    log.info("%s done", line["bench"])
    print(json.dumps(line), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="messages (or rounds) per s")
    parser.add_argument("--fanout-rounds", type=int, default=40)
    parser.add_argument("--rotation-members", type=int, default=50)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle counting")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds for each wait")
    parser.add_argument(
        "--invite-at-once",
        action="store_true",
        help="create each group with every invitation (default: the admin adds a few at a time)",
    )
    parser.add_argument("--services", type=int, default=1, help="service nodes, meshed")
    parser.add_argument("--quick", action="store_true", help="CI's smoke run: small sizes")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("groups-bench", "harness.group_network"):
        logging.getLogger(name).setLevel(logging.INFO)
    if args.quick:
        sizes = Sizes(3, 6, 10.0, 2, 4, 1.0, 120.0, args.invite_at_once)
    else:
        sizes = Sizes(args.members, args.messages, args.rate, args.fanout_rounds,
                      max(args.rotation_members, args.members), args.idle, args.limit,
                      args.invite_at_once, args.services)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(run, sizes, Path(tmp), emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
