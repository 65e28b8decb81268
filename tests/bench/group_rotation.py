"""Key rotation after a removal in a large private group: the remover's CPU time, the key
shares (how many, how many bytes), and the time until every remaining member reads the
first message under the new key; then the round in which every other member rotates.

Where it runs: in one process on the in-process network of the unit tests
(tests/harness/fake_node.py: a publish reaches every other node at once, no sockets, a real
store archive), with real parts everywhere else: one `Messenger` per member, each with its
own SQLCipher profile (the database calls inline, so each member's CPU count holds them),
real Olm and Megolm (vodozemac), default policies, the real clock. The admin befriends every
member with contact requests, creates the group with every invitation at once, every member
accepts; one warm-up message from each member puts every Megolm key in place. The latencies
are therefore the messengers' own work (every member shares this process's one thread),
not a relay's; tests/bench/groups.py measures the same rotation on real nodes.

CPU time is counted per member by a trio instrument (tests/harness/task_cpu.py: the
thread's CPU clock around each task step, for the member whose tasks it is), so other
processes on the machine do not inflate it. Bytes are the WakuMessages as published; on a
relay each is carried to every node on the shard (`bytes_to_every_node` counts that: one
copy per other node here, before relay, Noise and yamux framing).

Phases, each one JSON line (`"bench": ...`):
- `group_rotation_setup`: the group formed, how long each part took;
- `group_rotation_steady`: every member but the one to remove sends one message (keys in
  place): envelopes, CPU, bytes, time to displayed at every member;
- `group_rotation_removal`: the admin removes a member; its removal frame goes in a new
  Megolm session whose key it shares with each remaining member (and a notice to the
  removed one): the remover's CPU, the envelope and its shares, the bytes, the time until
  every remaining member displayed the removal (the first message under the new key) and
  until the admin saw it `delivered`; what receiving it cost each member;
- `group_rotation_round`: every remaining member but the admin sends one message: each
  one's first envelope after the removal is a new session with its key for every other
  member (the rotation of the whole group);
- `group_rotation_removed_member`: what the removed member could not decrypt, and that it
  displayed none of the texts sent after.

`--quick` is what CI runs (5 members). Never asserts on time.
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
from harness.fake_group_network import FakeGroupNetwork, fake_group_network  # noqa: E402
from harness.group_network import (  # noqa: E402
    Member,
    Seal,
    SealLog,
    Sent,
    all_delivered,
    all_displayed,
    befriend,
    form_group,
    latencies,
)
from harness.waiting import wait_until  # noqa: E402

from chat.groups.wire import GroupEnvelope, GroupWireError  # noqa: E402
from chat.messenger import MessengerConfig  # noqa: E402
from chat.messenger.conversation import Unsealed  # noqa: E402
from chat.messenger.group_crypto import GroupCrypto  # noqa: E402
from chat.waku.message import WakuMessage  # noqa: E402

TEXT = "the quick brown fox jumps over the lazy dog, again and again"  # 60 bytes
NETWORK = "in-process (tests/harness/fake_node.py), no sockets"

log = logging.getLogger("group-rotation-bench")
SEALS = SealLog()


# ==== what opening an envelope cost ============================================================
@dataclass(frozen=True)
class Open:
    at: float
    cpu_seconds: float
    with_share: bool
    """The envelope carried a share for the member opening it (a new key, a notice)."""
    read: bool
    """It decrypted (False: a session we do not hold, or our own echo)."""


@dataclass
class OpenLog:
    opens: list[Open] = field(default_factory=list)

    def install(self) -> None:
        open_log = self
        open_envelope = GroupCrypto.open

        def timed_open(self: GroupCrypto, message: WakuMessage) -> Unsealed | None:
            own = self._ctx.me.identity_key
            try:
                shares = GroupEnvelope.decode(message.payload).shares
                with_share = any(s.recipient_identity_key == own for s in shares)
            except GroupWireError:
                with_share = False
            started = time.thread_time()
            opened = open_envelope(self, message)
            took = time.thread_time() - started
            open_log.opens.append(Open(time.perf_counter(), took, with_share, opened is not None))
            return opened

        GroupCrypto.open = timed_open  # type: ignore[method-assign]

    def between(self, start: float, end: float) -> list[Open]:
        return [o for o in self.opens if start <= o.at <= end]


OPENS = OpenLog()


# ==== figures ==================================================================================
def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(values: list[float], prefix: str, unit: str = "ms") -> dict[str, float | None]:
    if not values:
        return {f"{prefix}p50_{unit}": None, f"{prefix}max_{unit}": None}
    return {
        f"{prefix}p50_{unit}": round(statistics.median(values), 2),
        f"{prefix}p99_{unit}": round(percentile(values, 0.99), 2),
        f"{prefix}max_{unit}": round(max(values), 2),
    }


def envelopes(seals: list[Seal], prefix: str) -> dict[str, Any]:
    """Group envelopes as sealed: sizes, shares, and the sealing thread's CPU."""
    shared = [s for s in seals if s.shares]
    return {
        f"{prefix}envelopes": len(seals),
        f"{prefix}envelope_bytes_median": int(statistics.median(s.envelope for s in seals))
        if seals
        else None,
        f"{prefix}envelope_bytes_max": max((s.envelope for s in seals), default=None),
        f"{prefix}shares_per_envelope": round(sum(s.shares for s in seals) / len(seals), 2)
        if seals
        else None,
        f"{prefix}share_bytes_per_envelope_median": int(
            statistics.median(s.share_bytes for s in seals)
        )
        if seals
        else None,
        f"{prefix}bytes_per_share_median": int(
            statistics.median(s.share_bytes / s.shares for s in shared)
        )
        if shared
        else None,
        **spread([s.cpu_seconds * 1000 for s in seals], f"{prefix}seal_cpu_"),
    }


@dataclass
class Window:
    """What every member published and spent over a phase."""

    net: FakeGroupNetwork
    cpu_before: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    process_cpu: float = 0.0

    def __enter__(self) -> Window:
        self.cpu_before = self.net.cpu.snapshot()
        self.process_cpu = time.process_time()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ended = time.perf_counter()
        self.process_cpu = time.process_time() - self.process_cpu
        after = self.net.cpu.snapshot()
        self.cpu = {k: v - self.cpu_before.get(k, 0.0) for k, v in after.items()}

    def published(self, members: list[Member]) -> list[tuple[str, int]]:
        return [
            (topic, size)
            for m in members
            for at, topic, size in m.published
            if self.started <= at <= self.ended
        ]

    def figures(self, members: list[Member], prefix: str = "") -> dict[str, Any]:
        published = self.published(members)
        group = [size for topic, size in published if "/group-" in topic]
        others = len(self.net.network.nodes) - 1
        return {
            f"{prefix}publishes": len(published),
            f"{prefix}group_publishes": len(group),
            f"{prefix}published_bytes": sum(size for _, size in published),
            f"{prefix}bytes_to_every_node": sum(size for _, size in published) * others,
        }

    def member_cpu(self, members: list[Member], prefix: str) -> dict[str, Any]:
        values = [self.cpu.get(m.name, 0.0) * 1000 for m in members]
        return {**spread(values, prefix), f"{prefix}total_ms": round(sum(values), 1)}


async def quiet(members: list[Member], seconds: float, limit: float) -> None:
    """Until nobody published for `seconds` (the acknowledging syncs are out)."""

    def last() -> float:
        return max((m.published[-1][0] for m in members if m.published), default=0.0)

    await wait_until(lambda: time.perf_counter() - last() >= seconds, limit, what="quiet")


@dataclass(frozen=True)
class Sizes:
    members: int
    rate: float
    limit: float
    sync_delay: float = 1.0
    """The messengers' SDS sync delay (the default; shorter in the quick run)."""
    quiet: float = 1.5
    """Seconds without a publish that end a phase."""
    warm_up_rounds: int = 6
    """At most; they end with the first round whose envelopes carry no share."""


# ==== phases ===================================================================================
async def send_round(
    net: FakeGroupNetwork, group_id: str, senders: list[Member], everyone: list[Member],
    rate: float, limit: float,
) -> Sent:  # fmt: skip
    """Each sender sends one message, `rate` a second (the command's CPU counted for its
    sender); returns once every other member of `everyone` displayed every one."""
    sent = await send_each(net, group_id, senders, rate)
    await all_displayed(sent, everyone, limit)
    return sent


async def send_each(
    net: FakeGroupNetwork, group_id: str, senders: list[Member], rate: float
) -> Sent:
    sent: Sent = {}
    for i, sender in enumerate(senders):
        started = time.perf_counter()
        with net.cpu.charged_to(sender.name):
            view = await sender.messenger.send_text(group_id, f"{TEXT} {i:05d}")
        sent[view.id] = (sender, started)
        await trio.sleep(1 / rate)
    return sent


async def steady_phase(
    net: FakeGroupNetwork, group_id: str, everyone: list[Member], senders: list[Member],
    sizes: Sizes,
) -> dict[str, Any]:  # fmt: skip
    with Window(net) as window:
        sent = await send_round(net, group_id, senders, everyone, sizes.rate, sizes.limit)
        delivered = await all_delivered(sent, sizes.limit)
        await quiet(everyone, sizes.quiet, sizes.limit)
    _, last, acked = latencies(sent, everyone)
    return {
        "bench": "group_rotation_steady",
        "network": NETWORK,
        "members": len(everyone),
        "messages": len(sent),
        "all_delivered": delivered,
        **envelopes(SEALS.first(sent), ""),
        **spread(last, "to_last_member_"),
        **spread(acked, "delivered_"),
        **window.figures(everyone),
        **window.member_cpu(everyone, "cpu_per_member_"),
        "process_cpu_s": round(window.process_cpu, 2),
        "window_s": round(window.ended - window.started, 2),
    }


async def removal_phase(
    net: FakeGroupNetwork, group_id: str, everyone: list[Member], removed: Member, sizes: Sizes
) -> dict[str, Any]:
    admin = everyone[0]
    rest = [m for m in everyone if m is not removed]
    at_publish: list[tuple[str, float, float]] = []
    """The admin's publishes: (content topic, when, the admin's CPU so far)."""
    publish = admin.messenger.node.publish

    def measured_publish(pubsub_topic: str, message: WakuMessage) -> int:
        at_publish.append((message.content_topic, time.perf_counter(), net.cpu.so_far(admin.name)))
        return publish(pubsub_topic, message)

    admin.messenger.node.publish = measured_publish  # type: ignore[method-assign]
    removal_id = ""
    with Window(net) as window:
        cpu_start = net.cpu.so_far(admin.name)
        with net.cpu.charged_to(admin.name):
            view = await admin.messenger.remove_group_member(group_id, removed.key)
        command_done = time.perf_counter()
        command_cpu = net.cpu.so_far(admin.name) - cpu_start

        def readable_everywhere() -> bool:
            nonlocal removal_id
            found = [
                {i for i, (kind, text) in m.kinds.items()
                 if kind == "system" and "removed" in text and m.shown[i] >= window.started}
                for m in rest[1:]
            ]  # fmt: skip
            if not all(found):
                return False
            removal_id = next(iter(found[0]))
            return True

        await wait_until(readable_everywhere, sizes.limit, what="the removal displayed everywhere")
        delivered = await all_delivered({removal_id: (admin, window.started)}, sizes.limit)
        await quiet(everyone, sizes.quiet, sizes.limit)
    admin.messenger.node.publish = publish  # type: ignore[method-assign]
    group_frames = [(at, cpu) for topic, at, cpu in at_publish if "/group-" in topic]
    first_frame_at, first_frame_cpu = group_frames[0] if group_frames else (None, None)
    shown = [m.shown[removal_id] - window.started for m in rest[1:]]
    opens = OPENS.between(window.started, window.ended)
    with_share = [o.cpu_seconds * 1000 for o in opens if o.with_share and o.read]
    seals = SEALS.first([removal_id])
    return {
        "bench": "group_rotation_removal",
        "network": NETWORK,
        "members": len(everyone),
        "remaining": len(rest),
        "members_after": len(view.members),
        **envelopes(seals, "removal_frame_"),
        "remover_command_cpu_ms": ms(command_cpu),
        "remover_command_ms": ms(command_done - window.started),
        "remover_cpu_until_frame_published_ms": ms(first_frame_cpu - cpu_start)
        if first_frame_cpu is not None
        else None,
        "frame_published_after_ms": ms(first_frame_at - window.started)
        if first_frame_at is not None
        else None,
        "remover_cpu_whole_rotation_ms": ms(window.cpu.get(admin.name, 0.0)),
        **spread([s * 1000 for s in shown], "readable_at_member_"),
        "readable_everywhere_ms": ms(max(shown)) if shown else None,
        "delivered": delivered,
        "delivered_ms": ms(admin.delivered[removal_id] - window.started)
        if removal_id in admin.delivered
        else None,
        **spread(with_share, "open_with_share_cpu_"),
        **window.figures(everyone),
        "remover_published_bytes": sum(
            size for at, _, size in admin.published if window.started <= at <= window.ended
        ),
        **window.member_cpu(rest[1:], "cpu_per_receiver_"),
        "process_cpu_s": round(window.process_cpu, 2),
        "window_s": round(window.ended - window.started, 2),
    }


async def rotating_phase(
    net: FakeGroupNetwork, group_id: str, everyone: list[Member], removed: Member, sizes: Sizes
) -> dict[str, Any]:
    rest = [m for m in everyone if m is not removed]
    with Window(net) as window:
        sent = await send_round(net, group_id, rest[1:], rest, sizes.rate, sizes.limit)
        delivered = await all_delivered(sent, sizes.limit)
        await quiet(everyone, sizes.quiet, sizes.limit)
    _, last, acked = latencies(sent, rest)
    opens = OPENS.between(window.started, window.ended)
    return {
        "bench": "group_rotation_round",
        "network": NETWORK,
        "members": len(rest),
        "messages": len(sent),
        "all_delivered": delivered,
        **envelopes(SEALS.first(sent), ""),
        **spread(last, "to_last_member_"),
        **spread(acked, "delivered_"),
        **spread([o.cpu_seconds * 1000 for o in opens if o.with_share and o.read],
                 "open_with_share_cpu_"),
        **spread([o.cpu_seconds * 1000 for o in opens if not o.with_share and o.read],
                 "open_without_share_cpu_"),
        **window.figures(everyone),
        **window.member_cpu(rest, "cpu_per_member_"),
        "process_cpu_s": round(window.process_cpu, 2),
        "window_s": round(window.ended - window.started, 2),
    }  # fmt: skip


async def warm_up_round(
    net: FakeGroupNetwork, group_id: str, everyone: list[Member], number: int, sizes: Sizes
) -> dict[str, Any]:
    """One message from every member; what did not arrive within the limit is counted (a
    store scan fills it in later), not waited for."""
    log.info("warm-up round %d", number)
    started = time.perf_counter()
    sent = await send_each(net, group_id, everyone, sizes.rate)
    with trio.move_on_after(sizes.limit):
        await all_displayed(sent, everyone, sizes.limit)
    delivered = await all_delivered(sent, sizes.limit)
    with trio.move_on_after(sizes.limit):
        await quiet(everyone, sizes.quiet, sizes.limit)
    each, last, _ = latencies(sent, everyone)
    return {
        "bench": "group_rotation_warm_up",
        "round": number,
        "members": len(everyone),
        "displayed": len(each),
        "expected": len(sent) * (len(everyone) - 1),
        "all_delivered": delivered,
        **envelopes(SEALS.first(sent), ""),
        **spread(last, "to_last_member_"),
        "round_s": round(time.perf_counter() - started, 1),
    }


# ==== the run ==================================================================================
async def run(sizes: Sizes, base: Path, out: Callable[[dict[str, Any]], None]) -> None:
    SEALS.install()
    OPENS.install()
    started = time.perf_counter()
    config = MessengerConfig(mdns=False, sync_delay=sizes.sync_delay)
    async with fake_group_network(base, config) as net:
        everyone = [await net.start_member(f"member{i:02d}") for i in range(sizes.members)]
        admin, others = everyone[0], everyone[1:]
        removed = everyone[-1]
        begun = time.perf_counter()
        log.info("%d members started; befriending", sizes.members)
        await befriend(admin, others, sizes.limit)
        befriended = time.perf_counter()
        log.info("forming the group")
        group_id = await form_group("rotation", admin, others, sizes.limit, at_once=True)
        formed = time.perf_counter()
        out({
            "bench": "group_rotation_setup",
            "network": NETWORK,
            "members": sizes.members,
            "start_s": round(begun - started, 1),
            "befriend_s": round(befriended - begun, 1),
            "form_s": round(formed - befriended, 1),
        })  # fmt: skip
        # Warm-up rounds: every Megolm key in place and confirmed, and each joiner's notices
        # to the members invited with it (its join, pairwise, with its first
        # NOTICE_ENVELOPES envelopes) used up: until a round's envelopes carry no share.
        for rounds in range(1, sizes.warm_up_rounds + 1):
            line = await warm_up_round(net, group_id, everyone, rounds, sizes)
            out(line)
            if not line["shares_per_envelope"]:
                break
        log.info("steady round")
        senders = [m for m in everyone if m is not removed]
        out(await steady_phase(net, group_id, everyone, senders, sizes))
        undecryptable = (await removed.messenger.group(group_id)).undecryptable
        shown_before = set(removed.shown)
        log.info("removal")
        out(await removal_phase(net, group_id, everyone, removed, sizes))
        log.info("the round after the removal")
        out(await rotating_phase(net, group_id, everyone, removed, sizes))
        view = await removed.messenger.group(group_id)
        out({
            "bench": "group_rotation_removed_member",
            "undecryptable_after_removal": view.undecryptable - undecryptable,
            "texts_displayed_after_removal": sum(
                removed.kinds[i][0] == "text" for i in set(removed.shown) - shown_before
            ),
        })  # fmt: skip
        out(
            {
                "bench": "group_rotation_done",
                "wall_s": round(time.perf_counter() - started, 1),
                "cpu_unattributed_s": round(net.cpu.of("unattributed"), 2),
            }
        )


def emit(line: dict[str, Any]) -> None:
    log.info("%s done", line["bench"])
    print(json.dumps(line), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5.0, help="messages per s in a round")
    parser.add_argument("--limit", type=float, default=600.0, help="seconds for each wait")
    parser.add_argument("--warm-up-rounds", type=int, default=6, help="at most")
    parser.add_argument("--quick", action="store_true", help="CI's smoke run: 5 members")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("group-rotation-bench").setLevel(logging.INFO)
    quick = Sizes(5, 20.0, 60.0, sync_delay=0.2, quiet=0.5)
    sizes = (
        quick
        if args.quick
        else Sizes(args.members, args.rate, args.limit, warm_up_rounds=args.warm_up_rounds)
    )
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(run, sizes, Path(tmp), emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
