"""A light-mode network in one process: two service nodes (relay, store, filter, light push,
peer exchange) meshed with each other, relay messengers connected to both, and light
messengers using both as their service nodes. Real hosts on loopback, real SQLCipher
profiles; timers shortened as in harness.fast."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio
from multiaddr import Multiaddr

from chat.light_node import LightClientNode
from chat.messenger import Messenger
from chat.waku.node import NodeConfig
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions
from harness.fast import FAST
from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.store import Store

PASSPHRASE = "correct horse battery staple"
LOOPBACK = "/ip4/127.0.0.1/tcp/0"
SERVICE_NAMES = ("service-a", "service-b", "service-c")


@dataclass
class LightNet:
    nursery: trio.Nursery
    tmp: Path
    profiles: Profiles
    services: dict[str, ServiceNode] = field(default_factory=dict)
    stores: dict[str, Store] = field(default_factory=dict)
    scopes: dict[str, trio.CancelScope] = field(default_factory=dict)

    async def start_services(self, count: int = 2) -> list[ServiceNode]:
        """Service nodes, each keeping the earlier ones connected (one relay mesh)."""
        for name in SERVICE_NAMES[:count]:
            static = tuple(self.service_addr(n) for n in self.services)
            config = ServiceNodeConfig(
                node=NodeConfig(listen_addrs=[Multiaddr(LOOPBACK)], static_peers=static),
                store=StoreOptions(self.tmp / name / "archive.sqlite"),
                filter=True,
                lightpush=True,
            )
            service = ServiceNode(config)
            self.scopes[name] = await self.nursery.start(self._run_service, service)
            self.services[name] = service
        return list(self.services.values())

    @staticmethod
    async def _run_service(service: ServiceNode, task_status: Any) -> None:
        with trio.CancelScope() as scope:
            async with service.run():
                task_status.started(scope)
                await trio.sleep_forever()

    def service_addr(self, name: str) -> str:
        return str(self.services[name].node.full_multiaddrs()[0])

    def service_named(self, peer_id: str) -> str:
        return next(n for n, s in self.services.items() if str(s.node.host.peer_id) == peer_id)

    def service_addrs(self) -> tuple[str, ...]:
        return tuple(self.service_addr(name) for name in self.services)

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

    async def start(
        self, name: str, *, light: bool, peers: tuple[str, ...] | None = None, **overrides: Any
    ) -> Messenger:
        """`peers`: the service nodes it is told of (default: all of them)."""
        given = self.service_addrs() if peers is None else peers
        config = replace(FAST, peers=given, light=light, **overrides)
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
        """Stop a messenger or a service node as if its process ended."""
        self.scopes.pop(name).cancel()
        await trio.sleep(0.2)  # let the cancelled tasks unwind and sockets close
        if name in self.stores:
            self.stores.pop(name).close()
        self.services.pop(name, None)

    def close(self) -> None:
        for scope in self.scopes.values():
            scope.cancel()
        for store in self.stores.values():
            with contextlib.suppress(Exception):
                store.close()


def light_node(messenger: Messenger) -> LightClientNode:
    node = messenger.node
    assert isinstance(node, LightClientNode)
    return node


async def light_ready(messenger: Messenger) -> bool:
    """Subscriptions held on two nodes and a push node held."""
    health = light_node(messenger).light_health()
    return health.filter_held == health.filter_wanted and health.push_held > 0
