"""`chinwag lab run`: a LiveScenario on real processes, each in its own network namespace
where permitted (chat/lab/netns.py), on loopback otherwise.

Start the service nodes, one fault proxy per (client, node) link, and the clients (each
dials the nodes through its proxies); make every pair of clients contacts and create the
groups over the REST API (before the clock starts: setup is not measured, and done without
loss — with a scenario's loss, the clients are then restarted with it); then send the
scripted traffic while the timeline applies the faults, take snapshots of every client's
chats, and after the settle time (or as soon as every message is held) write the report.

The decisions (what to send when, which fault when, each message's fate) live in plain
classes with the time passed in (timeline.py, fates.py, TrafficPlan below); this module
only does the I/O."""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from chat.lab.fates import FateLedger, tag_of
from chat.lab.fault_proxy import FaultProxy, free_port
from chat.lab.link_shaper import LinkShape
from chat.lab.live_community import COMMUNITY_SHARD, LabCommunity
from chat.lab.live_processes import (
    Client,
    ClientFlags,
    LabCommands,
    Placement,
    ServiceNode,
    start_client,
    start_node,
)
from chat.lab.live_scenario import Fault, LiveScenario
from chat.lab.netns import LabCells, lab_namespaces_problem, remove_stale_lab_namespaces
from chat.lab.timeline import FaultTimeline, expand

log = logging.getLogger(__name__)

SNAPSHOT_EVERY = 1.0
SETUP_LIMIT = 180.0
LOSSY_MESH_WAIT = 30.0
PAGE = 200
SEND_TIMEOUT = 30.0
"""Seconds a message write may take before the lab counts it as not written."""
TRUE_TIME_SLACK = 1.0
"""Seconds a corrected receipt may lie outside [sent, seen] (clock reads of processes)."""


class LabSetupError(RuntimeError):
    """The network could not be set up (contacts, groups) in time."""


class LabStopped(RuntimeError):
    """SIGTERM or SIGHUP stopped the run (its processes and namespaces were cleaned up)."""


async def _stop_on_signal(signals: Any) -> None:
    """Turn SIGTERM/SIGHUP into an error, so the run's `finally` cleans up as on Ctrl-C."""
    async for signum in signals:
        raise LabStopped(f"stopped by {signal.Signals(signum).name}")


def choose_isolation(requested: str) -> tuple[bool, str]:
    """Whether to run in network namespaces, and the report's sentence saying so and why.
    A scenario that asks for "netns" on a machine that cannot gets a LabSetupError."""
    if requested == "loopback":
        return False, "loopback (the scenario asks for it)"
    problem = lab_namespaces_problem()
    if problem is None:
        return True, ("netns: each process in its own network namespace, joined to the lab's "
                      "only through its fault proxies")  # fmt: skip
    if requested == "netns":
        raise LabSetupError(f"the scenario asks for network namespaces, but {problem}")
    return False, f"loopback (no network namespaces: {problem})"


@dataclass(frozen=True, slots=True)
class PlannedSend:
    at: float
    sender: int
    chat: str
    """"direct", "group" or "community" (its channel)."""
    peer: int
    """The other client (direct) or the group's number (group); 0 (community)."""
    tag: str
    size: int


def plan_traffic(scenario: LiveScenario) -> list[PlannedSend]:
    """Every message of the run, from the seed alone: 1:1 messages between random pairs and
    group messages from random members, at the scenario's rates."""
    rng = random.Random(scenario.seed)
    traffic, clients = scenario.traffic, scenario.network.clients
    sends: list[PlannedSend] = []
    if traffic.direct_interval > 0:
        at, number = traffic.direct_interval / 2, 0
        while at < scenario.duration:
            sender, peer = rng.sample(range(clients), 2)
            sends.append(PlannedSend(at, sender, "direct", peer, f"d{number}",
                                     traffic.direct_size))  # fmt: skip
            at, number = at + traffic.direct_interval, number + 1
    if traffic.groups:
        at, number = traffic.group_interval / 2, 0
        while at < scenario.duration:
            sends.append(PlannedSend(at, rng.randrange(clients), "group",
                                     number % traffic.groups, f"g{number}",
                                     traffic.group_size))  # fmt: skip
            at, number = at + traffic.group_interval, number + 1
    if traffic.community_interval:
        at, number = traffic.community_interval / 2, 0
        while at < scenario.duration:
            sends.append(PlannedSend(at, rng.randrange(clients), "community", 0, f"c{number}",
                                     traffic.community_size))  # fmt: skip
            at, number = at + traffic.community_interval, number + 1
    return sorted(sends, key=lambda s: (s.at, s.tag))


def true_receipt(stamp: float, offsets: list[float], sent_at: float, seen_at: float) -> float:
    """When a client really received a message it stamped `stamp` with its clock, which has
    been off by each of `offsets` (the current one first) in the run: the first reading that
    falls between the sending and the snapshot that showed it (a message received just
    before a restart with another clock carries the old clock's stamp)."""
    for offset in offsets:
        if sent_at - TRUE_TIME_SLACK <= stamp - offset <= seen_at + TRUE_TIME_SLACK:
            return stamp - offset
    return stamp - offsets[0]


def message_text(tag: str, size: int) -> str:
    head = f"lab:{tag} "
    return head + "x" * max(0, size - len(head))


@dataclass
class LiveRun:
    scenario: LiveScenario
    data_dir: Path
    commands: LabCommands = field(init=False)
    nodes: list[ServiceNode] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    proxies: dict[tuple[int, int], FaultProxy] = field(default_factory=dict)
    """(client, node) -> the proxy on that link."""
    direct_chats: dict[tuple[int, int], str] = field(default_factory=dict)
    group_ids: list[str] = field(default_factory=list)
    ledger: FateLedger = field(init=False)
    origin: float = 0.0
    ended_at: float | None = None
    """Seconds after `origin` when the run's last snapshot was taken."""
    """Wall time when traffic started; report times are relative to it."""
    events: list[dict[str, Any]] = field(default_factory=list)
    skipped_sends: int = 0
    bandwidth: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    health_at_end: dict[str, dict[str, Any]] = field(default_factory=dict)
    client_peers: list[list[str]] = field(default_factory=list)
    """Each client's service node addresses (through its proxies)."""
    clock_offsets: dict[str, float] = field(default_factory=dict)
    """client -> seconds its clock is off now (clock_skew faults in force)."""
    offsets_seen: dict[str, list[float]] = field(default_factory=dict)
    """client -> every offset its clock has had in this run (0 first)."""
    shown_sent_at: dict[str, float] = field(default_factory=dict)
    """tag -> the send time its first receiver showed minus when the lab sent it (s)."""
    validation: dict[str, dict[str, int]] = field(default_factory=dict)
    """Service node -> its relay validator's refusals and its light push answers."""
    nursery: trio.Nursery | None = None
    progress_to: Callable[[str], None] = field(default=lambda text: None)
    """Told what the run is doing (the command prints it on stderr)."""
    stage: str = "nothing yet"
    community: LabCommunity | None = None
    """The community whose channel carries traffic (when the scenario has some)."""
    isolation: str = "loopback"
    """The report's sentence on where the processes ran (choose_isolation)."""
    cells: LabCells | None = None
    """The processes' namespaces (None: loopback)."""

    def progress(self, text: str) -> None:
        self.stage = text
        self.progress_to(text)

    def __post_init__(self) -> None:
        self.commands = LabCommands(self.data_dir)
        self.ledger = FateLedger(self.scenario.late_after)
        if self.scenario.traffic.community_interval:
            self.community = LabCommunity()

    # ---- setup -------------------------------------------------------------------------
    def flags(self, index: int, *, loss: float | None = None) -> ClientFlags:
        net = self.scenario.network
        return ClientFlags(
            light=net.is_light(index),
            loss=net.loss if loss is None else loss,
            timer_scale=net.timer_scale,
            clock_offset=self.clock_offsets.get(f"client{index}", 0.0),
        )

    def initial_skews(self) -> dict[str, float]:
        """Clock skews in force from the first second: applied before the clock starts."""
        faults = expand(self.scenario.faults, self.scenario.network.clients)
        skews = {f.target: f.offset for f in faults if f.kind == "clock_skew" and f.at == 0}
        for target, offset in skews.items():
            self.offsets_seen.setdefault(target, [0.0]).append(offset)
        return skews

    async def isolate(self) -> None:
        """Decide on namespaces and, if so, make one per process (`close_cells` deletes them)."""
        net = self.scenario.network
        use_netns, self.isolation = await trio.to_thread.run_sync(choose_isolation, net.isolation)
        self.progress(f"isolation: {self.isolation}")
        if not use_netns:
            return
        stale = await trio.to_thread.run_sync(remove_stale_lab_namespaces)
        if stale:
            self.progress(f"deleted {len(stale)} namespace(s) of crashed lab runs")
        roles = [*(f"node{i}" for i in range(net.service_nodes)),
                 *(f"client{i}" for i in range(net.clients))]  # fmt: skip
        self.cells = LabCells(roles)
        await trio.to_thread.run_sync(self.cells.up)
        for role, cell in self.cells.cells.items():
            self.commands.placements[role] = Placement(cell.wrapper, cell.inside_ip)

    async def close_cells(self) -> None:
        if self.cells is not None:
            await trio.to_thread.run_sync(self.cells.down)

    def _outside(self, name: str) -> str:
        """Where the lab's proxies for a process listen (its namespace link's lab end)."""
        if self.cells is None:
            return "127.0.0.1"
        return self.cells.cells[name].outside_ip

    async def _proxy(self, nursery: trio.Nursery, dialer: str, node: ServiceNode,
                     rng: random.Random) -> tuple[FaultProxy, str]:  # fmt: skip
        """A proxy from `dialer` to a service node, and the address `dialer` dials: in
        namespaces the node's own (redirected to the proxy), on loopback the proxy's."""
        listen = self._outside(dialer)
        proxy = FaultProxy(node.port, target_host=node.host, listen_host=listen, rng=rng)
        await nursery.start(proxy.run)
        if self.cells is None:
            return proxy, f"/ip4/{listen}/tcp/{proxy.port}/p2p/{node.peer_id}"
        await trio.to_thread.run_sync(self.cells.redirect, dialer, node.host, node.port,
                                      proxy.port)  # fmt: skip
        return proxy, f"/ip4/{node.host}/tcp/{node.port}/p2p/{node.peer_id}"

    async def start(self, nursery: trio.Nursery) -> None:
        net = self.scenario.network
        env = self.commands.env()
        for index in range(net.service_nodes):
            name = f"node{index}"
            shards = (0, 1, COMMUNITY_SHARD) if self.community is not None else ()
            light = any(net.is_light(i) for i in range(net.clients))
            # Service nodes mesh with each other, as a fleet's do (and a node must have a
            # relay peer to take a light push); across namespaces through proxies that no
            # fault touches.
            if self.cells is None:
                others = [f"/ip4/127.0.0.1/tcp/{n.port}/p2p/{n.peer_id}" for n in self.nodes]
            else:
                others = []
                for other in self.nodes:
                    _, address = await self._proxy(nursery, name, other, random.Random(0))
                    others.append(address)
            process = self.commands.node_process(
                name, free_port(), net.peer_exchange, shards, light_services=light, peers=others
            )
            listen = process.command[process.command.index("--listen") + 1].split("/")
            node = ServiceNode(process, int(listen[4]), host=listen[2])
            await start_node(node, env, nursery)
            self.nodes.append(node)
        rng = random.Random(self.scenario.seed)
        self.progress("creating profiles")
        async with trio.open_nursery() as profiles:
            for index in range(net.clients):
                profiles.start_soon(self.commands.create_profile, f"client{index}")
        for index in range(net.clients):
            peers = []
            for number, node in enumerate(self.nodes):
                link_rng = random.Random(rng.random())
                proxy, address = await self._proxy(nursery, f"client{index}", node, link_rng)
                self.proxies[(index, number)] = proxy
                peers.append(address)
            self.client_peers.append(peers)
            # No loss during setup (it is not measured, and a lost acceptance can wait minutes
            # for its re-send): the clients start again with the scenario's loss below.
            process = self.commands.client_process(
                f"client{index}", peers, self.flags(index, loss=0.0)
            )
            self.clients.append(Client(process, f"client{index}"))
        self.progress("starting clients")
        async with trio.open_nursery() as starting:
            for client in self.clients:
                starting.start_soon(start_client, client, env, nursery)
        lights = sum(net.is_light(i) for i in range(net.clients))
        self.progress(f"started {len(self.nodes)} service node(s) and {len(self.clients)} clients"
                      + (f" ({lights} light)" if lights else ""))  # fmt: skip
        with trio.move_on_after(SETUP_LIMIT) as setup:
            await self._wait_for_mesh()
            self.progress("the service nodes serve every client")
            await self._befriend_all()
            self.progress("every pair of clients are contacts")
            await self._make_groups()
            self.progress(f"{len(self.group_ids)} group(s) joined by everyone")
            if self.community is not None:
                await self.community.set_up(self.clients, self._call, self._until)
                await self._wait_for_mesh()
                self.progress("the community's channel joined by everyone")
            skews = self.initial_skews()
            if net.loss or skews:
                await self._restart_for_traffic(nursery, skews)
        if setup.cancelled_caught:
            raise LabSetupError(
                f"setup did not finish in {SETUP_LIMIT:g} s; last step done: {self.stage}"
            )

    async def _restart_for_traffic(self, nursery: trio.Nursery, skews: dict[str, float]) -> None:
        """With the scenario's loss (every client) and the clock skews of the first second."""
        net = self.scenario.network
        self.clock_offsets.update(skews)
        again = [i for i, c in enumerate(self.clients) if net.loss or c.profile in skews]
        async with trio.open_nursery() as restarting:
            for index in again:
                restarting.start_soon(self._restart_client, index, nursery)
        if net.loss:
            self.progress(f"clients restarted with {net.loss:.0%} frame loss")
        for name, offset in skews.items():
            self.progress(f"{name} restarted with its clock {offset:+g} s off")
        # A lost subscription announcement is not sent again: under heavy loss a node may
        # never mesh some client. The run goes on and the report says so.
        with trio.move_on_after(LOSSY_MESH_WAIT):
            await self._wait_for_mesh()
        relay_clients = self._relay_clients()
        for index, node in enumerate(self.nodes):
            meshed = await node.mesh_peers()
            if meshed < relay_clients:
                note = (f"node{index} had {meshed} of {relay_clients} relay clients in its relay "
                        f"mesh when the traffic started ({LOSSY_MESH_WAIT:g} s after the "
                        "restart for the traffic)")  # fmt: skip
                self.notes.append(note)
                self.progress(note)

    async def _restart_client(self, index: int, nursery: trio.Nursery) -> None:
        """A clean stop (SIGTERM) and a start with the client's flags as they are now."""
        client = self.clients[index]
        client.process.restarting = True
        try:
            await client.process.stop()
            client.process.command = self.commands.command_for_client(
                client.profile, self.client_peers[index], self.flags(index)
            )
            await start_client(client, self.commands.env(), nursery)
        finally:
            client.process.restarting = False

    def _relay_clients(self) -> int:
        return sum(not self.scenario.network.is_light(i) for i in range(len(self.clients)))

    async def _wait_for_mesh(self) -> None:
        """Every node meshes every relay client, every light client holds its filter
        subscriptions and a push node: before that a message can reach nobody."""
        relay_clients = self._relay_clients()
        for node in self.nodes:

            async def meshed(node: ServiceNode = node) -> bool:
                if self.community is not None and self.community.channel_id:
                    on_community = await node.mesh_peers(COMMUNITY_SHARD)
                    if on_community < relay_clients:
                        return False
                return await node.mesh_peers() >= relay_clients

            await self._until(meshed)
        for index, client in enumerate(self.clients):
            if not self.scenario.network.is_light(index):
                continue

            async def served(client: Client = client) -> bool:
                services = (await self._call(client, "GET", "/v1/health")).get("light_services")
                wanted = min(services["filter_wanted"], len(self.nodes)) if services else 1
                return bool(services) and (
                    services["filter_held"] >= wanted and services["push_held"] >= 1
                )

            await self._until(served)

    async def _call(self, client: Client, method: str, path: str, **kwargs: Any) -> Any:
        assert client.http is not None
        response = await client.http.request(method, path, **kwargs)
        if not response.is_success:
            raise RuntimeError(f"{client.profile} {method} {path}: {response.status_code} "
                               f"{response.text[:300]}")  # fmt: skip
        return response.json()

    async def _until(self, check: Any, every: float = 0.3) -> Any:
        while not (result := await check()):  # noqa: ASYNC110 - polling another process's API
            await trio.sleep(every)
        return result

    async def _befriend_all(self) -> None:
        for client in self.clients:
            identity = await self._call(client, "GET", "/v1/identity")
            client.contact_link = identity["contact_link"]
        pairs = [(a, b) for a in range(len(self.clients)) for b in range(a + 1, len(self.clients))]
        for a, b in pairs:
            link = self.clients[b].contact_link
            await self._call(
                self.clients[a], "POST", "/v1/contacts", json={"link": link, "message": "lab"}
            )
        for a, b in pairs:
            asker, answerer = self.clients[a], self.clients[b]

            async def requested(asker: Client = asker, answerer: Client = answerer) -> bool:
                contacts = await self._call(answerer, "GET", "/v1/contacts")
                return any(c["chat_key"] == asker.chat_key for c in contacts)

            await self._until(requested)
            accepted = await self._call(answerer, "POST", f"/v1/contacts/{asker.chat_key}/accept")
            self.direct_chats[(a, b)] = self.direct_chats[(b, a)] = accepted["chat_id"]
        self.progress("contact requests accepted")
        for a, b in pairs:
            asker, answerer = self.clients[a], self.clients[b]

            async def mutual(asker: Client = asker, answerer: Client = answerer) -> bool:
                contacts = await self._call(asker, "GET", "/v1/contacts")
                return any(c["chat_key"] == answerer.chat_key and c["state"] == "mutual"
                           for c in contacts)  # fmt: skip

            await self._until(mutual)

    async def _make_groups(self) -> None:
        members = [c.chat_key for c in self.clients[1:]]
        for number in range(self.scenario.traffic.groups):
            body = {"name": f"lab {number}", "members": members}
            group = await self._call(self.clients[0], "POST", "/v1/groups", json=body)
            self.group_ids.append(group["id"])
        for client in self.clients[1:]:
            for group_id in self.group_ids:

                async def invited(client: Client = client, group_id: str = group_id) -> Any:
                    invites = await self._call(client, "GET", "/v1/invites")
                    return next((i for i in invites if i["group_id"] == group_id
                                 and i["direction"] == "received"), None)  # fmt: skip

                invite = await self._until(invited)
                await self._call(client, "POST", f"/v1/invites/{invite['id']}/accept")
        for group_id in self.group_ids:

            async def everyone_joined(group_id: str = group_id) -> bool:
                for client in self.clients:
                    group = await self._call(client, "GET", f"/v1/groups/{group_id}")
                    if any(m["state"] != "joined" for m in group["members"]):
                        return False
                return True

            await self._until(everyone_joined, every=0.5)

    # ---- the run -----------------------------------------------------------------------
    def now(self) -> float:
        return time.time() - self.origin

    async def run_traffic(self) -> None:
        scenario = self.scenario
        timeline = FaultTimeline(expand(scenario.faults, scenario.network.clients))
        plan = plan_traffic(scenario)
        self.origin = time.time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._snapshots)
            nursery.start_soon(self._apply_faults, timeline)
            for send in plan:
                await trio.sleep(max(0.0, send.at - self.now()))
                nursery.start_soon(self._send, send)
            await trio.sleep(max(0.0, scenario.duration - self.now()))
            self.progress(f"traffic done ({len(self.ledger.sent)} messages); settling")
            deadline = scenario.duration + scenario.settle
            while self.now() < deadline and not self._all_held():  # noqa: ASYNC110 - snapshots
                await trio.sleep(SNAPSHOT_EVERY)
            await self._snapshot_all()
            self.ended_at = self.now()
            nursery.cancel_scope.cancel()
        await self._collect_bandwidth()
        await self._collect_health()
        await self._collect_validation()

    def _all_held(self) -> bool:
        return bool(self.ledger.sent) and all(
            (tag, receiver) in self.ledger.held
            for tag, sent in self.ledger.sent.items()
            for receiver in sent.recipients
        )

    async def _send(self, send: PlannedSend) -> None:
        sender = self.clients[send.sender]
        if not sender.process.reachable:
            self.skipped_sends += 1  # a stopped or dead app writes nothing
            return
        if send.chat == "direct":
            chat_id = self.direct_chats[(send.sender, send.peer)]
            recipients = [self.clients[send.peer].profile]
            conversation = chat_id
        else:
            if send.chat == "group":
                chat_id = self.group_ids[send.peer]
            else:
                assert self.community is not None
                chat_id = self.community.channel_id
            recipients = [c.profile for i, c in enumerate(self.clients) if i != send.sender]
            conversation = chat_id
        at = time.time()
        self.ledger.record_send(send.tag, sender.profile, send.chat, conversation,
                                recipients, at)  # fmt: skip
        try:
            # A write answers once the message is persisted; under load (two test processes
            # and a dozen chinwag processes on two cores) that has taken over 5 s, and a
            # timeout would count a message the app may well have written as never sent.
            await self._call(sender, "POST", f"/v1/chats/{chat_id}/messages",
                             json={"text": message_text(send.tag, send.size)},
                             timeout=SEND_TIMEOUT)  # fmt: skip
        except (httpx.HTTPError, RuntimeError) as exc:
            # The API refused or did not answer: the message was not written.
            error = f"{type(exc).__name__}: {exc}"
            self.ledger.record_send_failure(send.tag, self.now(), error)
            log.info("send %s failed: %s", send.tag, error)
            await self._note_contact_states(sender, send)
        else:
            self.ledger.send_answer_s.append(time.time() - at)

    async def _note_contact_states(self, sender: Client, send: PlannedSend) -> None:
        """After a refused write, what both sides' contact lists say of each other (the
        evidence for a refusal such as "you are not contacts any more")."""
        if send.chat != "direct":
            return
        peer = self.clients[send.peer]
        states = {}
        for who, other in ((sender, peer), (peer, sender)):
            try:
                contacts = await self._call(who, "GET", "/v1/contacts")
            except (httpx.HTTPError, RuntimeError) as exc:
                states[who.profile] = f"unknown ({type(exc).__name__})"
                continue
            states[who.profile] = next(
                (c["state"] for c in contacts if c["chat_key"] == other.chat_key), "no contact"
            )
        self.notes.append(f"after {send.tag} was refused: contact states {states}")

    async def _snapshots(self) -> None:
        while True:
            await self._snapshot_all()
            await trio.sleep(SNAPSHOT_EVERY)

    async def _snapshot_all(self) -> None:
        async with trio.open_nursery() as nursery:
            for client in self.clients:
                if client.process.reachable:
                    nursery.start_soon(self._snapshot, client)

    async def _snapshot(self, client: Client) -> None:
        chat_ids = {chat_id for (a, _), chat_id in self.direct_chats.items()
                    if self.clients[a] is client} | set(self.group_ids)  # fmt: skip
        if self.community is not None:
            chat_ids.add(self.community.channel_id)
        keys = {c.chat_key: c.profile for c in self.clients}
        # A skewed client stamps `received_at` with its own clock: the lab knows the offsets
        # it has had, and takes off the one that puts the receipt where it can have been.
        offsets = [self.clock_offsets.get(client.profile, 0.0),
                   *self.offsets_seen.get(client.profile, [])]  # fmt: skip
        process = client.process.process
        try:
            for chat_id in sorted(chat_ids):
                messages = await self._messages(client, chat_id)
                if client.process.process is not process or client.process.restarting:
                    return  # restarted meanwhile (maybe with another clock): the next one
                # The state shown was true at the latest when the answer came: a recipient
                # that held the message only after this moment shows state run ahead.
                taken_at = time.time()
                incoming, shown = [], []
                for message in messages:
                    tag = tag_of(message["text"])
                    if tag is None:
                        continue
                    shown.append(tag)
                    if message["outgoing"]:
                        acked = [keys[k] for k in message.get("delivered_to", []) if k in keys]
                        self.ledger.observe_acknowledged(tag, acked, taken_at)
                    elif message.get("received_at"):
                        sent_at = self.ledger.sent[tag].sent_at if tag in self.ledger.sent else 0
                        stamp = float(message["received_at"])
                        received = true_receipt(stamp, offsets, sent_at, taken_at)
                        incoming.append((tag, received))
                        self._note_skew(tag, message)
                self.ledger.observe_incoming(client.profile, chat_id, incoming)
                self.ledger.observe_shown(client.profile, chat_id, shown)
        except (httpx.HTTPError, RuntimeError) as exc:
            log.info("snapshot of %s failed: %s", client.profile, exc)

    async def _messages(self, client: Client, chat_id: str) -> list[dict[str, Any]]:
        """The whole conversation, oldest first."""
        out: list[dict[str, Any]] = []
        before = ""
        while True:
            params: dict[str, Any] = {"limit": PAGE}
            if before:
                params["before"] = before
            page = await self._call(client, "GET", f"/v1/chats/{chat_id}/messages", params=params)
            out = page + out
            if len(page) < PAGE:
                return out
            before = page[0]["id"]

    async def _apply_faults(self, timeline: FaultTimeline) -> None:
        while (next_at := timeline.next_at()) is not None:
            await trio.sleep(max(0.0, next_at - self.now()))
            for step in timeline.due(self.now()):
                self.progress(f"{self.now():.1f} s: {step.fault.kind} {step.fault.target} "
                              f"{'starts' if step.starts else 'ends'}")  # fmt: skip
                self.events.append({"at": round(self.now(), 3), "fault": step.index,
                                    "kind": step.fault.kind, "target": step.fault.target,
                                    "starts": step.starts})  # fmt: skip
                await self._apply(step.fault, step.starts)

    async def _apply(self, fault: Fault, starts: bool) -> None:
        kind, target = fault.kind, fault.target
        process = self._process(target)
        if kind == "kill":
            if starts:
                await self._save_bandwidth(target)
                await process.kill()
            else:
                await self._restart(target)
        elif kind in ("pause", "sleep"):
            process.signal(signal.SIGSTOP if starts else signal.SIGCONT)
        if kind in ("sleep", "partition"):
            for proxy in self._links(target):
                proxy.set_cut(starts)
        elif kind == "latency":
            shape = LinkShape(fault.latency_ms / 1000, fault.jitter_ms / 1000) if starts else None
            for proxy in self._links(target):
                proxy.set_shape(shape or LinkShape())
        elif kind == "bandwidth":
            for proxy in self._links(target):
                proxy.set_shape(LinkShape(rate_bps=fault.rate_bps) if starts else LinkShape())
        elif kind == "clock_skew":
            if starts and fault.at == 0:
                return  # applied before the clock started (initial_skews)
            self.offsets_seen.setdefault(target, [0.0]).append(fault.offset)
            if starts:
                self.clock_offsets[target] = fault.offset
            else:
                self.clock_offsets.pop(target, None)
            assert self.nursery is not None
            await self._restart_client(int(target.removeprefix("client")), self.nursery)

    def _process(self, target: str) -> Any:
        if target.startswith("node"):
            return self.nodes[int(target.removeprefix("node"))].process
        return self.clients[int(target.removeprefix("client"))].process

    def _links(self, target: str) -> list[FaultProxy]:
        index = int(target.removeprefix("client"))
        return [proxy for (client, _), proxy in self.proxies.items() if client == index]

    async def _restart(self, target: str) -> None:
        process = self._process(target)
        assert self.nursery is not None  # the restarted process's reader lives in the run's
        process.restarts += 1
        if target.startswith("node"):
            await start_node(self.nodes[int(target.removeprefix("node"))], self.commands.env(),
                             self.nursery)  # fmt: skip
        else:
            await start_client(self.clients[int(target.removeprefix("client"))],
                               self.commands.env(), self.nursery)  # fmt: skip

    async def _save_bandwidth(self, target: str) -> None:
        if target.startswith("node"):
            await self._read_node_bandwidth(int(target.removeprefix("node")))
        if target.startswith("client"):
            client = self.clients[int(target.removeprefix("client"))]
            await self._read_bandwidth(client)

    async def _read_bandwidth(self, client: Client) -> None:
        if not client.process.reachable:
            return
        try:
            view = await self._call(client, "GET", "/v1/bandwidth")
        except (httpx.HTTPError, RuntimeError):
            return
        # Counters restart with the process: readings before each kill and at the end add up.
        saved = self.bandwidth.setdefault(client.profile, {"readings": 0})
        saved["readings"] += 1
        for direction in ("in", "out"):
            key = f"wire_bytes_{direction}"
            saved[key] = saved.get(key, 0) + int(view["wire"][f"bytes_{direction}"])
        protocols = saved.setdefault("protocol_bytes_in_out", {})
        for protocol in view["protocols"]:
            before = protocols.get(protocol["name"], [0, 0])
            protocols[protocol["name"]] = [before[0] + int(protocol["bytes_in"]),
                                           before[1] + int(protocol["bytes_out"])]  # fmt: skip

    async def _read_node_bandwidth(self, index: int) -> None:
        node = self.nodes[index]
        if not node.process.reachable:
            return
        try:
            totals = await node.wire_bytes()
        except httpx.HTTPError:
            return
        # Counters restart with the process: readings before each kill and at the end add up.
        saved = self.bandwidth.setdefault(f"node{index}", {"readings": 0})
        saved["readings"] += 1
        for direction, value in totals.items():
            key = f"wire_bytes_{direction}"
            saved[key] = saved.get(key, 0) + value

    def _note_skew(self, tag: str, message: dict[str, Any]) -> None:
        """The send time the first receiver shows for a message (the sender's claim; the
        conversation is ordered by it) minus when the lab sent it."""
        sent = self.ledger.sent.get(tag)
        if sent is not None and message.get("timestamp") and tag not in self.shown_sent_at:
            self.shown_sent_at[tag] = float(message["timestamp"]) - sent.sent_at

    async def _collect_validation(self) -> None:
        for index, node in enumerate(self.nodes):
            if node.process.reachable:
                with contextlib.suppress(httpx.HTTPError):
                    self.validation[f"node{index}"] = await node.validation()

    async def _collect_health(self) -> None:
        """Each client's health at the end: more peers than service nodes means clients
        reached each other directly, around the fault proxies."""
        for client in self.clients:
            if not client.process.reachable:
                self.health_at_end[client.profile] = {"status": "not running"}
                continue
            try:
                view = await self._call(client, "GET", "/v1/health")
            except (httpx.HTTPError, RuntimeError):
                continue
            self.health_at_end[client.profile] = {
                key: view.get(key) for key in ("status", "peers", "outbox", "store_reachable")
            }

    async def _collect_bandwidth(self) -> None:
        for index in range(len(self.nodes)):
            await self._read_node_bandwidth(index)
        for client in self.clients:
            await self._read_bandwidth(client)
        for (client_index, node_index), proxy in sorted(self.proxies.items()):
            name = self.clients[client_index].profile
            entry = self.bandwidth.setdefault(name, {"readings": 0})
            entry.setdefault("link_bytes", {})[f"node{node_index}"] = proxy.bytes_relayed
        for node_index in range(len(self.nodes)):
            total = sum(p.bytes_relayed for (_, n), p in self.proxies.items() if n == node_index)
            self.bandwidth.setdefault(f"node{node_index}", {"readings": 0})["link_bytes_total"] = (
                total
            )

    async def close(self) -> None:
        for client in self.clients:
            if client.http is not None:
                await client.http.aclose()
        await self.commands.close()


async def run_live(
    scenario: LiveScenario, data_dir: Path, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the scenario; its report (chat.lab.live_report builds the rest)."""
    from chat.lab.live_report import build_report

    await trio.Path(data_dir).mkdir(parents=True, exist_ok=True)
    run = LiveRun(scenario, data_dir)
    if progress is not None:
        run.progress_to = progress
    setup_started = time.time()
    try:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stop_on_signal, signals)
                run.nursery = nursery
                await run.isolate()
                await run.start(nursery)
                setup = time.time() - setup_started
                await run.run_traffic()
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            try:
                await run.close()
            finally:
                await run.close_cells()
    return build_report(run, setup)
