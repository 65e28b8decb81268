"""Private groups on a real network in one process, for the groups benchmark
(tests/bench/groups.py): one or more service nodes (relay + store) on 127.0.0.1, meshed
with each other, and one messenger per member, each with its own py-libp2p client node and
SQLCipher profile, connected to one service node (in turn); contacts made and invitations
accepted on the wire; and the instruments that measure them.

Why more than one service node for more than about 14 members: a member that connects to
one relay only gets a message by its mesh (at most `d_hi` = 8 peers of that relay) or by
gossip, where each heartbeat the relay sends IHAVE to `d_lazy` = 6 of the other peers, for
`history_gossip` = 3 heartbeats. With 20 members on one relay, 12 are outside its mesh and
each misses a message with probability (1 - 6/12)^3 = 1/8, left to the next store scan
(chat/reliability/store_checks.py, 60 s). With at most d_hi + d_lazy peers per relay every
peer outside the mesh gets every IHAVE. Real members keep several relay peers.

- `WireCounter`: bytes written to every TCP socket of the process (after Noise and yamux;
  every node lives here, so each byte is counted once, by the node that wrote it), the
  service node's apart, and relay RPC frames queued to peers;
- `SealLog`: every group envelope sealed (chat/messenger/group_crypto.py): how long sealing
  took, its size, its Megolm ciphertext and its key shares, by SDS message id;
- `Member`: when each message showed at a member (its `MessageAdded`), when ours showed
  `delivered`, and what its node published.

Both counters wrap a class's method for the process's lifetime: install them in a
benchmark's own process only.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from libp2p.io.trio import TrioTCPStream
from multiaddr import Multiaddr

from chat.client_node import ClientNode
from chat.events import MessageAdded, MessageUpdated, Subscription
from chat.groups.wire import GroupEnvelope
from chat.messenger import Messenger, MessengerConfig
from chat.messenger.group_crypto import GroupCrypto
from chat.proto import group_pb2
from chat.reliability.sds import SdsFrame
from chat.waku.message import WakuMessage
from chat.waku.node import NodeConfig
from chat.waku.relay.sendqueue import SendQueue
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions
from harness.waiting import wait_until
from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.store import Store

log = logging.getLogger(__name__)

LOOPBACK = "/ip4/127.0.0.1/tcp/0"
PASSPHRASE = "benchmark passphrase"
EVENT_BUFFER = 100_000
ADD_BATCH = 3
"""Members the admin adds at a time: their invitations and joins are 6 changes, which is
what an invitation's catch-up carries (chat/messenger/group_crypto.py CATCH_UP_CHANGES)."""

PROGRESS_EVERY = 30.0
"""Seconds between two progress lines of a long wait."""

Sent = dict[str, tuple["Member", float]]
"""Message id → (its sender, when `send_text` was called: perf_counter)."""


# ==== instruments ==============================================================================
@dataclass
class WireCounter:
    service_ports: set[int] = field(default_factory=set)
    tcp_by_service: int = 0
    tcp_by_members: int = 0
    relay_frames: int = 0
    relay_bytes: int = 0

    def snapshot(self) -> dict[str, int]:
        return {
            "tcp_by_service": self.tcp_by_service,
            "tcp_by_members": self.tcp_by_members,
            "relay_frames": self.relay_frames,
            "relay_bytes": self.relay_bytes,
        }

    def install(self) -> None:
        counter = self
        tcp_write = TrioTCPStream.write
        queue_put = SendQueue.put

        async def counted_write(self: TrioTCPStream, data: bytes) -> None:
            try:
                local_port = self.stream.socket.getsockname()[1]
            except OSError:
                local_port = 0
            # A service node's connections are the ones on its listening port.
            if local_port in counter.service_ports:
                counter.tcp_by_service += len(data)
            else:
                counter.tcp_by_members += len(data)
            await tcp_write(self, data)

        def counted_put(self: SendQueue, frame: bytes) -> bool:
            taken = queue_put(self, frame)
            if taken:
                counter.relay_frames += 1
                counter.relay_bytes += len(frame)
            return taken

        TrioTCPStream.write = counted_write  # type: ignore[method-assign]
        SendQueue.put = counted_put  # type: ignore[method-assign]


@dataclass(frozen=True)
class Seal:
    at: float
    seconds: float
    content: bool
    """A content frame (a message or a change), not a sync."""
    frame: int
    """The SDS frame sealed (the message, its causal history and bloom filter)."""
    envelope: int
    ciphertext: int
    shares: int
    share_bytes: int
    """What the shares add to the envelope (exact: the envelope without them, subtracted)."""
    cpu_seconds: float = 0.0
    """The sealing thread's CPU time for it (`seconds` is wall time: other processes count)."""


@dataclass
class SealLog:
    seals: dict[str, list[Seal]] = field(default_factory=dict)
    """SDS message id → each time its frame was sealed (a re-send seals again)."""
    syncs: list[Seal] = field(default_factory=list)

    def install(self) -> None:
        seal_log = self
        seal = GroupCrypto.seal

        def timed_seal(self: GroupCrypto, frame: bytes) -> bytes:
            started, cpu_started = time.perf_counter(), time.thread_time()
            sealed = seal(self, frame)
            took, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
            sds = SdsFrame.decode(frame)
            envelope = group_pb2.GroupEnvelope.FromString(sealed)  # as sealed: no limits
            bare = GroupEnvelope(envelope.session_id, envelope.ciphertext).encode()
            record = Seal(
                started, took, bool(sds.content), len(frame), len(sealed), len(envelope.ciphertext),
                len(envelope.shares), len(sealed) - len(bare), cpu,
            )  # fmt: skip
            if record.content:
                seal_log.seals.setdefault(sds.message_id, []).append(record)
            else:
                seal_log.syncs.append(record)
            return sealed

        GroupCrypto.seal = timed_seal  # type: ignore[method-assign]

    def first(self, message_ids: Iterable[str]) -> list[Seal]:
        return [self.seals[m][0] for m in message_ids if m in self.seals]

    def syncs_between(self, start: float, end: float) -> list[Seal]:
        return [s for s in self.syncs if start <= s.at <= end]


# ==== members ==================================================================================
@dataclass
class Member:
    name: str
    messenger: Messenger
    store: Store
    shown: dict[str, float] = field(default_factory=dict)
    """Incoming message id → when its MessageAdded came (perf_counter)."""
    kinds: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Incoming message id → (kind, text)."""
    delivered: dict[str, float] = field(default_factory=dict)
    """Our message id → when it first showed `delivered`."""
    published: list[tuple[float, str, int]] = field(default_factory=list)
    """(when, content topic, encoded WakuMessage bytes) of everything our node published."""

    @property
    def key(self) -> str:
        return self.messenger.identity().chat_key

    def group_publishes(self, start: float, end: float = float("inf")) -> list[int]:
        return [s for at, t, s in self.published if start <= at <= end and "/group-" in t]

    async def watch(self, events: Subscription) -> None:
        async for event in events:
            now = time.perf_counter()
            if isinstance(event, MessageAdded) and not event.message.outgoing:
                self.shown.setdefault(event.message.id, now)
                self.kinds[event.message.id] = (event.message.kind, event.message.text)
            elif isinstance(event, MessageUpdated) and event.message.state == "delivered":
                self.delivered.setdefault(event.message.id, now)

    def measure_publishes(self) -> None:
        node = self.messenger.node
        original = node.publish

        def measuring_publish(pubsub_topic: str, message: WakuMessage) -> int:
            size = len(message.encode())
            self.published.append((time.perf_counter(), message.content_topic, size))
            return original(pubsub_topic, message)

        node.publish = measuring_publish  # type: ignore[method-assign]


async def _run_member(member: Member, task_status: Any) -> None:
    events = member.messenger.subscribe(EVENT_BUFFER)
    with events:
        await _watching(member, events, task_status)


async def _watching(member: Member, events: Subscription, task_status: Any) -> None:
    async with member.messenger.run(), trio.open_nursery() as nursery:
        nursery.start_soon(member.watch, events)
        task_status.started()
        await trio.sleep_forever()


@dataclass
class Network:
    nursery: trio.Nursery
    base: Path
    services: list[ServiceNode]
    service_addrs: list[str]
    members: list[Member] = field(default_factory=list)

    @property
    def service(self) -> ServiceNode:
        """The first service node."""
        return self.services[0]

    def relay_counts(self) -> dict[str, int]:
        """Relay's counters that say how messages travelled or were lost: the service
        node's copies dropped from full send queues, the members' first copies that came by
        gossip (IHAVE → IWANT, outside the service node's mesh), and messages the members'
        inboxes dropped (left to store scans)."""
        clients = [
            m.messenger.node for m in self.members if isinstance(m.messenger.node, ClientNode)
        ]
        return {
            "service_send_queue_drops": sum(
                s.relay.router.counters.send_queue_drops for s in self.services
            ),
            "members_received_by_gossip": sum(
                c.relay.router.counters.received_after_iwant for c in clients
            ),
            "members_relay_received": sum(c.relay.router.counters.delivered for c in clients),
            "members_inbox_drops": sum(c.inbox_drops for c in clients),
        }

    async def start_member(self, name: str) -> Member:
        profiles = Profiles(self.base / "profiles")
        kdf = KdfParams.fresh(opslimit=1, memlimit=8192)
        store = profiles.create(name, PASSPHRASE, display_name=name, now=1, kdf=kdf)
        # Members are spread over the service nodes in turn.
        service_addr = self.service_addrs[len(self.members) % len(self.service_addrs)]
        config = MessengerConfig(listen_addrs=(LOOPBACK,), peers=(service_addr,), mdns=False)
        member = Member(name, Messenger(store, config), store)
        member.measure_publishes()
        await self.nursery.start(_run_member, member)
        self.members.append(member)
        return member

    async def meshed(self, members: Iterable[Member], limit: float) -> None:
        waiting = list(members)

        async def all_meshed() -> bool:
            return all(sum(m.messenger.node.relay_peers().values()) for m in waiting)

        await wait_until(all_meshed, limit, what="every member to have a relay peer")


@contextlib.asynccontextmanager
async def group_network(
    base: Path, counter: WireCounter, services: int = 1
) -> AsyncIterator[Network]:
    """`services` service nodes, each connected to the ones before (one relay mesh);
    members join with `start_member`. Profiles are closed at the end."""
    async with trio.open_nursery() as nursery:
        net = Network(nursery, base, [], [])
        try:
            for index in range(services):
                archive = base / f"archive{index}.sqlite"
                await nursery.start(_run_service, net, counter, archive)
            yield net
        finally:
            nursery.cancel_scope.cancel()
    for member in net.members:
        member.store.close()


async def _run_service(net: Network, counter: WireCounter, archive: Path, task_status: Any) -> None:
    config = ServiceNodeConfig(
        node=NodeConfig(listen_addrs=[Multiaddr(LOOPBACK)], static_peers=tuple(net.service_addrs)),
        store=StoreOptions(archive),
    )
    service = ServiceNode(config)
    async with service.run():
        address = service.node.full_multiaddrs()[0]
        counter.service_ports.add(int(address.value_for_protocol("tcp")))
        net.services.append(service)
        net.service_addrs.append(str(address))
        task_status.started()
        await trio.sleep_forever()


# ==== forming a group ==========================================================================
async def befriend(admin: Member, others: list[Member], limit: float) -> dict[str, str]:
    """The admin asks each, each accepts: mutual contacts. Returns chat key → 1:1 chat id."""
    for other in others:
        await admin.messenger.add_contact(other.messenger.identity().contact_link, "bench")
    admin_key = admin.key
    pending = list(others)
    chats: dict[str, str] = {}
    told = time.perf_counter()
    with trio.fail_after(limit):
        while pending:
            for member in list(pending):
                if any(c.chat_key == admin_key for c in await member.messenger.contacts()):
                    view = await member.messenger.accept_contact(admin_key)
                    assert view.chat_id is not None
                    chats[member.key] = view.chat_id
                    pending.remove(member)
            if time.perf_counter() - told > PROGRESS_EVERY:
                told = time.perf_counter()
                log.info("befriending: %d of %d have the admin's request", len(chats), len(others))
            await trio.sleep(0.05)
    keys = {m.key for m in others}

    async def mutual() -> bool:
        found = {c.chat_key for c in await admin.messenger.contacts() if c.state == "mutual"}
        return keys <= found

    await wait_until(mutual, limit, what="the admin to see every contact mutual")
    return chats


async def form_group(
    name: str,
    admin: Member,
    others: list[Member],
    limit: float,
    *,
    at_once: bool = False,
    adds: list[float] | None = None,
) -> str:
    """Every member invited and joined; returns once every member sees everyone joined.

    `at_once`: the group is created with every invitation. Otherwise with the first, and the
    admin adds the others ADD_BATCH at a time, each batch once everyone sees the one before
    joined (few enough that an invitation's catch-up holds every change since it). (At
    once, each invitation carries the log as it was when it was made, and a member who
    joined early may never learn the invitations made after theirs; and a 'joined' that
    overtakes the admin's 'invited' is refused until it is sent again, a minute or more
    later: see docs/performance.md, "Private groups".) `adds` gets the seconds each batch
    took, from the admin's first command to everyone seeing the batch joined."""
    first = others if at_once else others[:1]
    group = await admin.messenger.create_group(name, [m.key for m in first])
    await _accept(group.id, first, limit)
    await _all_joined(group.id, [admin, *first], limit)
    done = len(first)
    while done < len(others):
        batch = others[done : done + ADD_BATCH]
        started = time.perf_counter()
        for member in batch:
            await admin.messenger.add_group_member(group.id, member.key)
        # The invitees answer once the members know of the invitations (a person takes that
        # long): a 'joined' that overtakes its 'invited' waits for a re-send (see above).
        for member in batch:
            await _all_know(group.id, others[:done], member, limit)
        known = time.perf_counter()
        await _accept(group.id, batch, limit)
        accepted = time.perf_counter()
        done += len(batch)
        await _all_joined(group.id, [admin, *others[:done]], limit)
        took = (known - started, accepted - known, time.perf_counter() - accepted)
        log.info("%s: %d added (%d members): invitations known everywhere %.1f s, "
                 "received and accepted %.1f s, seen joined everywhere %.1f s",
                 name, len(batch), done + 1, *took)  # fmt: skip
        if adds is not None:
            adds.append(sum(took))
    return group.id


async def _all_know(group_id: str, members: list[Member], invitee: Member, limit: float) -> None:
    key = invitee.key

    async def known() -> bool:
        for member in members:
            view = await member.messenger.group(group_id)
            if all(m.chat_key != key for m in view.members):
                return False
        return True

    await wait_until(known, limit, what=f"every member to know {invitee.name} is invited")


async def _accept(group_id: str, invitees: list[Member], limit: float) -> None:
    pending = list(invitees)
    with trio.fail_after(limit):
        while pending:
            for member in list(pending):
                for invite in await member.messenger.invites():
                    if invite.group_id == group_id and invite.state == "invited":
                        await member.messenger.accept_invite(invite.id)
                        pending.remove(member)
                        break
            await trio.sleep(0.05)


async def _all_joined(group_id: str, everyone: list[Member], limit: float) -> None:
    async def all_joined() -> bool:
        for member in everyone:
            view = await member.messenger.group(group_id)
            states = [m.state for m in view.members]
            if len(states) != len(everyone) or set(states) != {"joined"}:
                return False
        return True

    async def seen() -> str:
        views = [await m.messenger.group(group_id) for m in everyone]
        return "; ".join(
            f"{m.name}: " + ",".join(sorted(f"{v.display_name}={v.state}" for v in view.members))
            for m, view in zip(everyone, views, strict=True)
        )

    try:
        await wait_until(all_joined, limit)
    except AssertionError:
        raise AssertionError(f"not everyone sees everyone joined: {await seen()}") from None


# ==== messages =================================================================================
async def send_round(
    group_id: str, senders: list[Member], text: str, rate: float, limit: float,
    everyone: list[Member] | None = None,
) -> Sent:  # fmt: skip
    """Each sender sends one message, `rate` a second; returns once every other member of
    `everyone` (default: the senders) displayed every one."""
    sent: Sent = {}
    for i, sender in enumerate(senders):
        started = time.perf_counter()
        view = await sender.messenger.send_text(group_id, f"{text} {i:05d}")
        sent[view.id] = (sender, started)
        await trio.sleep(1 / rate)
    await all_displayed(sent, everyone or senders, limit)
    return sent


async def all_displayed(sent: Sent, everyone: list[Member], limit: float) -> None:
    def missing() -> int:
        return sum(
            message_id not in member.shown
            for message_id, (sender, _) in sent.items()
            for member in everyone
            if member is not sender
        )

    await wait_until(
        lambda: missing() == 0,
        limit,
        what=lambda: f"every message displayed at every member ({missing()} missing)",
    )


async def all_delivered(sent: Sent, limit: float) -> bool:
    """Whether every message showed `delivered` at its sender within `limit`."""

    def done() -> bool:
        return all(message_id in sender.delivered for message_id, (sender, _) in sent.items())

    with trio.move_on_after(limit):
        await wait_until(done, limit)
        return True
    return False


def latencies(sent: Sent, everyone: list[Member]) -> tuple[list[float], list[float], list[float]]:
    """In ms: per (message, other member) to displayed; per message to the last member;
    per message to `delivered` at its sender."""
    each: list[float] = []
    last: list[float] = []
    delivered: list[float] = []
    for message_id, (sender, started) in sent.items():
        times = [
            (m.shown[message_id] - started) * 1000
            for m in everyone
            if m is not sender and message_id in m.shown
        ]
        each.extend(times)
        if times:
            last.append(max(times))
        if message_id in sender.delivered:
            delivered.append((sender.delivered[message_id] - started) * 1000)
    return each, last, delivered
