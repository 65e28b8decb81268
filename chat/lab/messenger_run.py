"""Runs a MessengerScenario: real messengers (real profile databases, real Olm sessions, SDS,
outbox, store checks) chat over simulated service nodes (chat/lab/sim_network.py) under
trio's MockClock, and the run reports every message's fate and the states its sender showed.

Clients become contacts through the real contact-request flow during the warm-up; then, every
`message_interval` seconds, a random client sends a tagged text to a random contact while the
faults (loss throughout, churn, partitions) come and go, and the run goes on for `settle`
seconds so re-sends and store checks can finish.

Determinism: every choice comes from the seed; the messengers' timers run without jitter;
database calls run inline (virtual time stands still during them); trio runs the tasks ready
at one instant in a fixed order and each client's contact-request partition is fixed
(chat/lab/steady.py); store answers order ties by arrival, not hash (chat/lab/sim_network.py);
the report holds tags, names, counts and simulated times, never ciphertexts or ids (those
differ between runs).
"""

from __future__ import annotations

import functools
import random
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from trio.testing import MockClock

from chat import events as ev
from chat.contacts import RequestPolicy
from chat.groups.invites import InvitePolicy
from chat.lab.messenger_ledger import MessengerLedger
from chat.lab.messenger_scenario import MessengerScenario, scenario_dict
from chat.lab.sim_network import SimClientNode, SimNetwork
from chat.lab.stats import rounded
from chat.lab.steady import fixed_partition_identity, steady_scheduling
from chat.messenger import Messenger, MessengerConfig
from chat.reliability.outbox import RetryPolicy
from storage.aio import AsyncStore
from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.store import Store

WALL_CLOCK_START = 1_700_000_000.0
"""The messengers' clock when the mock clock reads 0 (timestamps look like real ones)."""
PASSPHRASE = "lab simulation"
FAST_KDF = {"opslimit": 1, "memlimit": 8192}
"""Throwaway profiles: the passphrase KDF at its cheapest (it protects nothing here)."""
TAG = re.compile(r"^lab:(m\d+)\b")
SETUP_STEP = 1.0


class InlineStore(AsyncStore):
    """The profile store with each call run on the calling thread: on a worker thread the
    mock clock would jump ahead while a call runs, and the run would not repeat."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.store = store

    async def run(self, call: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return call(self.store)


@dataclass
class Client:
    name: str
    node: SimClientNode
    store: Store
    messenger: Messenger
    chat_key: str = ""
    link: str = ""


def messenger_config() -> MessengerConfig:
    """The shipped defaults, without jitter (jitter draws from unseeded generators)."""
    return MessengerConfig(
        retry=RetryPolicy(jitter=0.0),
        requests=RequestPolicy(jitter=0.0),
        invites=InvitePolicy(jitter=0.0),
        mdns=False,
        clock=lambda: WALL_CLOCK_START + trio.current_time(),
    )


class MessengerRun:
    def __init__(self, scenario: MessengerScenario, workdir: Path) -> None:
        s = self.scenario = scenario
        self.rng = random.Random(f"{s.seed}:run")
        self.network = SimNetwork(
            seed=s.seed,
            services=s.service_nodes,
            latency=s.latency.model(),
            loss=0.0,
            store_timeout=s.store_timeout,
        )
        self.profiles = Profiles(workdir)
        self.clients: list[Client] = []
        self.chats: dict[tuple[str, str], str] = {}
        """(client, contact) -> their 1:1 chat id."""
        self.pairs: list[tuple[int, int]] = []
        self.ledger = MessengerLedger(s.late_after)
        self.traffic_start = 0.0
        self.offline_periods = 0
        self.send_errors = 0
        self.tags = 0
        self._pending_recipient: dict[str, str] = {}
        """Tag -> recipient, until the sender's messenger shows the message."""

    # ---- the run ---------------------------------------------------------------------------
    async def run(self) -> dict[str, object]:
        s = self.scenario
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.network.run)
                for index in range(s.clients):
                    await self._start_client(nursery, index)
                await self._befriend()
                self.traffic_start = s.warmup
                self.ledger.origin = self.traffic_start
                await trio.sleep_until(self.traffic_start)
                self.network.loss = s.loss
                self._schedule()
                end = self.traffic_start + s.duration + s.settle
                await trio.sleep_until(end)
                await self._collect_store_evidence()
                report = self._report()
                nursery.cancel_scope.cancel()
        finally:
            for client in self.clients:
                client.store.close()
            self.network.close()
        return report

    async def _start_client(self, nursery: trio.Nursery, index: int) -> None:
        name = f"c{index:03d}"
        kdf = KdfParams.fresh(**FAST_KDF)
        store = self.profiles.create(name, PASSPHRASE, display_name=name, now=1_000, kdf=kdf)
        fixed_partition_identity(store, index, WALL_CLOCK_START + trio.current_time())
        node = self.network.client(name, index % self.scenario.service_nodes)
        messenger = Messenger(store, messenger_config(), db=InlineStore(store), node=node)
        client = Client(name, node, store, messenger)
        messenger.observe(lambda event: self._observe(client, event))
        await nursery.start(_run_messenger, messenger)
        identity = messenger.identity()
        client.chat_key, client.link = identity.chat_key, identity.contact_link
        self.clients.append(client)

    async def _befriend(self) -> None:
        """Each client asks the next `contacts` clients; each of those accepts once the
        request has arrived (over the simulated network)."""
        s, n = self.scenario, self.scenario.clients
        seen: set[tuple[int, int]] = set()
        for index in range(n):
            for step in range(1, s.contacts + 1):
                other = (index + step) % n
                pair = (min(index, other), max(index, other))
                if other != index and pair not in seen:
                    seen.add(pair)
                    self.pairs.append((index, other))
        for asker, answerer in self.pairs:
            await self.clients[asker].messenger.add_contact(self.clients[answerer].link, "lab")
        waiting = list(self.pairs)
        while waiting and trio.current_time() + SETUP_STEP < s.warmup:
            await trio.sleep(SETUP_STEP)
            still = []
            for asker, answerer in waiting:
                a, b = self.clients[asker], self.clients[answerer]
                try:
                    view = await b.messenger.accept_contact(a.chat_key)
                except ev.MessengerError:
                    still.append((asker, answerer))
                    continue
                if view.chat_id is not None:
                    self.chats[(a.name, b.name)] = self.chats[(b.name, a.name)] = view.chat_id
            waiting = still

    def _schedule(self) -> None:
        s, network, start = self.scenario, self.network, self.traffic_start
        for part in s.partitions:
            cut = int(s.service_nodes * part.fraction)
            groups = {index: int(index >= cut) for index in range(s.service_nodes)}
            network.schedule(start + part.start, functools.partial(_cut, network, groups))
            network.schedule(start + part.end, lambda now: network.heal())
        for index in range(int(s.duration / s.message_interval)):
            network.schedule(start + index * s.message_interval, self._send)
        if s.churn.interval > 0:
            at = start + s.churn.interval
            while at < start + s.duration:
                network.schedule(at, self._leave)
                at += s.churn.interval

    def _send(self, now: float) -> None:
        if not self.chats:
            return
        sender = self.rng.choice(self.clients)
        contacts = [c for c in self.clients if (sender.name, c.name) in self.chats]
        if not contacts:
            return
        recipient = self.rng.choice(contacts)
        tag = f"m{self.tags:05d}"
        self.tags += 1
        chat_id = self.chats[(sender.name, recipient.name)]
        self._pending_recipient[tag] = recipient.name
        self.network.spawn(lambda: self._send_text(sender, chat_id, tag))

    async def _send_text(self, sender: Client, chat_id: str, tag: str) -> None:
        try:
            await sender.messenger.send_text(chat_id, f"lab:{tag} from {sender.name}")
        except ev.MessengerError:
            self.send_errors += 1

    def _leave(self, now: float) -> None:
        online = [c for c in self.clients if c.node.online]
        if not online:
            return
        client = self.rng.choice(online)
        client.node.set_online(False)
        self.offline_periods += 1
        self.network.schedule(
            now + self.scenario.churn.downtime, lambda t: client.node.set_online(True)
        )

    # ---- observing the messengers ----------------------------------------------------------
    def _observe(self, client: Client, event: ev.Event) -> None:
        now = trio.current_time()
        if isinstance(event, ev.MessageAdded):
            view = event.message
            found = TAG.match(view.text)
            if found is None:
                return
            tag = found.group(1)
            if view.outgoing:
                recipient = self._pending_recipient.pop(tag, None)
                if recipient is not None:
                    self.ledger.sent(tag, client.name, recipient, view.chat_id, view.id, now)
            else:
                self.ledger.held(tag, client.name, view.chat_id, now)
        elif isinstance(event, ev.MessageUpdated) and event.message.outgoing:
            view = event.message
            self.ledger.state(view.id, view.state, now, view.state_reason)

    async def _collect_store_evidence(self) -> None:
        """For each message its sender showed `stored`: when the store node it names first
        held the copy (the hash in the trace's `stored` step)."""
        by_name = {c.name: c for c in self.clients}
        for message_id, tag in self.ledger.by_message_id.items():
            tracked = self.ledger.messages[tag]
            if "stored" not in tracked.states:
                continue
            sender = by_name[tracked.sender]
            held: float | None = None
            for step in await sender.messenger.trace(message_id):
                if step.to_state == "stored":
                    msg_hash = bytes.fromhex(str(step.evidence.get("waku_hash", "")))
                    held = sender.node.service.archived_at.get(msg_hash)
                    break
            self.ledger.store_held(tag, held)

    # ---- the report ------------------------------------------------------------------------
    def _report(self) -> dict[str, object]:
        s, counters = self.scenario, self.network.counters
        messages = self.ledger.report()
        report: dict[str, object] = {
            "scenario": scenario_dict(s),
            "contacts": {"pairs": len(self.pairs), "established": len(self.chats) // 2},
            "messages_sent": len(self.ledger.messages),
            "send_errors": self.send_errors,
            **messages,
            "network": {
                "frames_sent": counters.frames_sent,
                "frames_lost": counters.frames_lost,
                "frames_cut": counters.frames_cut,
                "inbox_overflow": counters.inbox_overflow,
            },
            "churn": {"offline_periods": self.offline_periods},
            "partitions": self._partitions(),
        }
        return report

    def _partitions(self) -> list[dict[str, object]]:
        s = self.scenario
        out: list[dict[str, object]] = []
        for part in s.partitions:
            cut = int(s.service_nodes * part.fraction)
            side = {c.name: int(c.node.service.index >= cut) for c in self.clients}
            start, end = self.traffic_start + part.start, self.traffic_start + part.end
            crossing = [
                tracked
                for tracked in self.ledger.messages.values()
                if start <= tracked.sent_at < end
                and side[tracked.sender] != side[tracked.recipient]
            ]
            held = [self.ledger.held_at(t.tag) for t in crossing]
            delivered = sum(1 for t in crossing if "delivered" in t.states)
            out.append({
                "start": part.start, "end": part.end,
                "crossing_messages": len(crossing),
                "held_after_heal": sum(1 for at in held if at is not None),
                "shown_delivered": delivered,
                "seconds_after_heal_to_hold_all": rounded(
                    max(max(at for at in held if at is not None) - end, 0.0), 3)
                if crossing and all(at is not None for at in held) else None,
            })  # fmt: skip
        return out


def _cut(network: SimNetwork, groups: dict[int, int], now: float) -> None:
    network.partition(groups)


async def _run_messenger(messenger: Messenger, task_status: Any) -> None:
    async with messenger.run():
        task_status.started()
        await trio.sleep_forever()


def run_messenger_scenario(scenario: MessengerScenario) -> dict[str, object]:
    """Runs the scenario to the end in this thread (a trio run on a MockClock), with its
    profiles in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="chinwag-lab-sim-") as workdir:
        run = MessengerRun(scenario, Path(workdir))
        with steady_scheduling():
            report: dict[str, object] = trio.run(run.run, clock=MockClock(autojump_threshold=0))
    return report
