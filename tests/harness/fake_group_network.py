"""Private groups of many members in one process without sockets, for the key-rotation
benchmark (tests/bench/group_rotation.py): each member a real `Messenger` with its own
SQLCipher profile (database calls inline, so their CPU counts for the member), real Olm and
Megolm, on the in-process network of the unit tests (tests/harness/fake_node.py: what one
node publishes reaches every other node at once, and a real store archive keeps it).

The members are the `Member`s of tests/harness/group_network.py, so the same helpers form
the group (contact requests and invitations through the messengers' own flows) and time
the messages; `TaskCpu` counts each member's CPU time. Real clock, default policies.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from chat.messenger import Messenger, MessengerConfig
from harness.fake_node import FakeNetwork, InlineStore
from harness.group_network import EVENT_BUFFER, PASSPHRASE, Member
from harness.task_cpu import TaskCpu
from storage.kdf import KdfParams
from storage.profiles import Profiles


@dataclass
class FakeGroupNetwork:
    nursery: trio.Nursery
    base: Path
    network: FakeNetwork
    cpu: TaskCpu
    config: MessengerConfig
    members: list[Member] = field(default_factory=list)

    async def start_member(self, name: str) -> Member:
        profiles = Profiles(self.base / "profiles")
        kdf = KdfParams.fresh(opslimit=1, memlimit=8192)  # only the unlock, not measured
        store = profiles.create(name, PASSPHRASE, display_name=name, now=1, kdf=kdf)
        node = self.network.node(name)
        messenger = Messenger(store, self.config, db=InlineStore(store), node=node)
        member = Member(name, messenger, store)
        member.measure_publishes()
        await self.nursery.start(self._run_member, member)
        self.members.append(member)
        return member

    async def _run_member(self, member: Member, task_status: Any) -> None:
        self.cpu.track(trio.lowlevel.current_task(), member.name)
        events = member.messenger.subscribe(EVENT_BUFFER)
        with events:
            async with member.messenger.run(), trio.open_nursery() as nursery:
                nursery.start_soon(member.watch, events)
                task_status.started()
                await trio.sleep_forever()


@contextlib.asynccontextmanager
async def fake_group_network(
    base: Path, config: MessengerConfig | None = None
) -> AsyncIterator[FakeGroupNetwork]:
    """An empty network; members join with `start_member`. Profiles are closed at the end."""
    cpu = TaskCpu()
    trio.lowlevel.add_instrument(cpu)
    network = FakeNetwork()
    try:
        async with trio.open_nursery() as nursery:
            net = FakeGroupNetwork(nursery, base, network, cpu, config or MessengerConfig())
            try:
                yield net
            finally:
                nursery.cancel_scope.cancel()
        for member in net.members:
            member.store.close()
    finally:
        trio.lowlevel.remove_instrument(cpu)
        network.close()
