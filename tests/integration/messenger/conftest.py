"""A small chinwag network in one process: a service node (relay + store) and messengers
with real profiles (SQCipher files), all on loopback. Timers are shortened so scenarios take
seconds; the protocols and code paths are the production ones."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import trio
from harness.fast import FAST
from harness.waiting import wait_until
from multiaddr import Multiaddr

from chat.messenger import Messenger
from chat.waku.node import NodeConfig
from chat.waku.relay.faults import RelayFaults
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions
from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.store import Store

PASSPHRASE = "correct horse battery staple"
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


@dataclass
class Net:
    """Start a service node and messengers; everything stops when the test ends."""

    nursery: trio.Nursery
    tmp: Path
    profiles: Profiles
    service: ServiceNode | None = None
    stores: dict[str, Store] = field(default_factory=dict)
    scopes: dict[str, trio.CancelScope] = field(default_factory=dict)

    async def start_service(
        self, listen: str = LOOPBACK, key_pair: Any = None, faults: RelayFaults | None = None
    ) -> ServiceNode:
        node = NodeConfig(listen_addrs=[Multiaddr(listen)])
        if key_pair is not None:
            node = replace(node, key_pair=key_pair)
        service = ServiceNode(
            ServiceNodeConfig(
                node=node,
                store=StoreOptions(self.tmp / "archive" / "archive.sqlite"),
                faults=faults,
            )
        )
        self.scopes["service"] = await self.nursery.start(self._run_service, service)
        self.service = service
        return service

    @staticmethod
    async def _run_service(service: ServiceNode, task_status: Any) -> None:
        with trio.CancelScope() as scope:
            async with service.run():
                task_status.started(scope)
                await trio.sleep_forever()

    def service_addr(self) -> str:
        assert self.service is not None
        return str(self.service.node.full_multiaddrs()[0])

    def store_for(self, name: str) -> Store:
        if name not in self.stores:
            kdf = KdfParams.fresh(opslimit=1, memlimit=8192)
            if name in self.profiles.names():
                self.stores[name] = self.profiles.unlock(name, PASSPHRASE)
            else:
                self.stores[name] = self.profiles.create(
                    name, PASSPHRASE, display_name=name.title(), now=1_000, kdf=kdf
                )
        return self.stores[name]

    async def start(self, name: str, **overrides: Any) -> Messenger:
        peers = (self.service_addr(),) if self.service is not None else ()
        config = replace(FAST, **{"peers": peers, **overrides})
        messenger = Messenger(self.store_for(name), config)
        self.scopes[name] = await self.nursery.start(self._run_messenger, messenger)
        return messenger

    @staticmethod
    async def _run_messenger(messenger: Messenger, task_status: Any) -> None:
        with trio.CancelScope() as scope:
            async with messenger.run():
                task_status.started(scope)
                await trio.sleep_forever()

    async def stop(self, name: str) -> None:
        """Stop a messenger (or the service node) as if its process ended."""
        self.scopes.pop(name).cancel()
        await trio.sleep(0.2)  # let the cancelled tasks unwind and sockets close
        if name in self.stores:
            self.stores.pop(name).close()
        if name == "service":
            self.service = None

    def close(self) -> None:
        for scope in self.scopes.values():
            scope.cancel()
        for store in self.stores.values():
            with contextlib.suppress(Exception):
                store.close()


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    async with trio.open_nursery() as nursery:
        network = Net(nursery, tmp_path, Profiles(tmp_path / "profiles"))
        try:
            yield network
        finally:
            network.close()


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a node restarted in place)."""

    def pick() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    return pick


@pytest.fixture
def befriend() -> Callable[[Messenger, Messenger], Awaitable[str]]:
    """Alice sends Bob a contact request, Bob accepts; returns their chat id."""

    async def make_friends(alice: Messenger, bob: Messenger) -> str:
        await wait_until(lambda: _online(alice, bob))
        await alice.add_contact(bob.identity().contact_link, "hi, it's Alice")
        alice_key = alice.identity().chat_key

        async def bob_has_request() -> bool:
            return any(c.chat_key == alice_key for c in await bob.contacts())

        await wait_until(bob_has_request)
        accepted = await bob.accept_contact(alice_key)
        assert accepted.chat_id is not None

        async def alice_mutual() -> bool:
            return any(c.state == "mutual" for c in await alice.contacts())

        await wait_until(alice_mutual)
        return accepted.chat_id

    return make_friends


async def _online(*messengers: Messenger) -> bool:
    return all(
        m.health().status == "online" or sum(m.health().peers_per_shard.values()) > 0
        for m in messengers
    )
