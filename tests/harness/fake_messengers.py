"""Messengers on a fake network (fake_node.py) with real profile databases, for unit tests
of the messenger's own logic on trio's mock clock: every timer under the test's control."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import trio

from chat import events as ev
from chat.contacts import RequestPolicy
from chat.groups.invites import InvitePolicy
from chat.groups.keys import RotationPolicy
from chat.messenger import Messenger, MessengerConfig
from chat.reliability.outbox import RetryPolicy
from chat.reliability.store_checks import StoreCheckParams
from harness.fake_node import FakeNetwork, FakeNode, InlineStore, mock_wall_clock
from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.store import Store

PASSPHRASE = "correct horse battery staple"

CONFIG = MessengerConfig(
    retry=RetryPolicy(
        max_attempts=3,
        first_delay=10.0,
        factor=2.0,
        max_delay=60.0,
        jitter=0.0,
        ack_timeout=30.0,
        max_resends=2,
        max_resend_delay=120.0,
    ),
    requests=RequestPolicy(first_resend=60.0, factor=3.0, jitter=0.0),
    invites=InvitePolicy(first_resend=60.0, factor=3.0, jitter=0.0, max_unreached=3),
    group_keys=RotationPolicy(reshare_after=30.0),
    store_checks=StoreCheckParams(first_check_after=3.0, check_every=3.0, scan_every=60.0),
    sync_delay=1.0,
    mdns=False,
    clock=mock_wall_clock(),
)
"""Round numbers and no jitter, so a test can name the second each attempt is due."""


@dataclass
class Running:
    messenger: Messenger
    node: FakeNode
    store: Store
    events: ev.Subscription
    scope: trio.CancelScope
    db: InlineStore
    stopping: trio.Event
    """Set it to end the messenger's block as `chinwag serve` does on SIGTERM (a clean stop,
    no cancellation from outside)."""
    seen: list[ev.Event] = field(default_factory=list)

    def drain(self) -> list[ev.Event]:
        """Every event since the last call."""
        while True:
            try:
                self.seen.append(self.events.receive_nowait())
            except trio.WouldBlock:
                break
        seen, self.seen = self.seen, []
        return seen

    def rejections(self) -> list[str]:
        return [e.reason for e in self.drain() if isinstance(e, ev.Rejected)]


@dataclass
class Peers:
    """Start messengers with real profiles on one fake network."""

    nursery: trio.Nursery
    network: FakeNetwork
    profiles: Profiles
    running: dict[str, Running] = field(default_factory=dict)

    async def start(
        self, name: str, *, disk: type[InlineStore] = InlineStore, **overrides: Any
    ) -> Running:
        """`disk`: how the profile DB is reached (StallingStore: a disk a test can stall)."""
        store = self._store(name)
        node = self.network.node(name)
        db = disk(store)
        messenger = Messenger(store, replace(CONFIG, **overrides), db=db, node=node)
        events = messenger.subscribe()
        stopping = trio.Event()
        scope = await self.nursery.start(_run, messenger, stopping)
        self.running[name] = Running(messenger, node, store, events, scope, db, stopping)
        return self.running[name]

    def _store(self, name: str) -> Store:
        if name in self.profiles.names():
            return self.profiles.unlock(name, PASSPHRASE)
        kdf = KdfParams.fresh(opslimit=1, memlimit=8192)
        return self.profiles.create(name, PASSPHRASE, display_name=name.title(), now=1_000, kdf=kdf)

    async def stop(self, name: str) -> None:
        running = self.running.pop(name)
        running.scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        self.network.nodes.remove(running.node)
        running.store.close()


async def _run(messenger: Messenger, stopping: trio.Event, task_status: Any) -> None:
    with trio.CancelScope() as scope:
        async with messenger.run():
            task_status.started(scope)
            await stopping.wait()


async def befriend(alice: Running, bob: Running) -> str:
    """Alice asks, Bob accepts; both end mutual. Returns their chat id."""
    await alice.messenger.add_contact(bob.messenger.identity().contact_link, "hi")
    alice_key = alice.messenger.identity().chat_key
    await trio.testing.wait_all_tasks_blocked()
    accepted = await bob.messenger.accept_contact(alice_key)
    await trio.testing.wait_all_tasks_blocked()
    assert accepted.chat_id is not None
    bob_key = bob.messenger.identity().chat_key
    assert [c.state for c in await alice.messenger.contacts() if c.chat_key == bob_key] == [
        "mutual"
    ]
    return accepted.chat_id


async def group_of(creator: Running, *members: Running, name: str = "Friends") -> str:
    """`creator` befriends each of `members`, makes a group of them, and each accepts the
    invitation. Returns the group id (also its chat id)."""
    for member in members:
        await befriend(creator, member)
    keys = [m.messenger.identity().chat_key for m in members]
    group = await creator.messenger.create_group(name, keys)
    await trio.testing.wait_all_tasks_blocked()
    for member in members:
        (invite,) = [i for i in await member.messenger.invites() if i.group_id == group.id]
        await member.messenger.accept_invite(invite.id)
        await trio.testing.wait_all_tasks_blocked()
    return group.id


async def states(running: Running, chat_id: str) -> list[str]:
    return [m.state for m in await running.messenger.messages(chat_id) if m.outgoing]


async def texts(running: Running, chat_id: str) -> list[str]:
    return [m.text for m in await running.messenger.messages(chat_id) if not m.outgoing]
