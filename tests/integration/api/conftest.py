"""A chinwag network in one process for the REST API: a service node (relay + store) and
messengers with real profiles, each behind its own API server on 127.0.0.1, driven over
real HTTP. Timers are shortened so scenarios take seconds; the code paths are the real ones."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from harness.fast import FAST
from harness.processes import PASSPHRASE
from multiaddr import Multiaddr

from chat.api.app import ApiApp
from chat.api.auth import load_or_create_token
from chat.api.handlers import Handlers
from chat.api.openapi import document_bytes
from chat.api.routing import Router
from chat.api.server import bind_api, serve_api
from chat.messenger import Messenger, MessengerConfig
from chat.waku.node import NodeConfig
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions
from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.store import Store

LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def fast_config(peers: tuple[str, ...]) -> MessengerConfig:
    return replace(FAST, peers=peers)


@dataclass
class ApiClient:
    """One messenger behind its own API, and an HTTP client that carries its token."""

    name: str
    messenger: Messenger
    app: ApiApp
    url: str
    token: str
    http: httpx.AsyncClient

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request that must succeed (2xx); its JSON body (None for 204)."""
        response = await self.http.request(method, path, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return None if response.status_code == 204 else response.json()


@dataclass
class ApiNet:
    nursery: trio.Nursery
    tmp: Path
    profiles: Profiles
    service: ServiceNode | None = None
    stores: list[Store] = field(default_factory=list)
    clients: list[ApiClient] = field(default_factory=list)

    async def start_service(self) -> str:
        service = ServiceNode(
            ServiceNodeConfig(
                node=NodeConfig(listen_addrs=[Multiaddr(LOOPBACK)]),
                store=StoreOptions(self.tmp / "archive.sqlite"),
            )
        )
        await self.nursery.start(self._run_service, service)
        self.service = service
        return str(service.node.full_multiaddrs()[0])

    @staticmethod
    async def _run_service(service: ServiceNode, task_status: Any) -> None:
        async with service.run():
            task_status.started()
            await trio.sleep_forever()

    async def start(self, name: str) -> ApiClient:
        kdf = KdfParams.fresh(opslimit=1, memlimit=8192)
        store = self.profiles.create(
            name, PASSPHRASE, display_name=name.title(), now=1_000, kdf=kdf
        )
        self.stores.append(store)
        peers = (str(self.service.node.full_multiaddrs()[0]),) if self.service else ()
        messenger = Messenger(store, fast_config(peers))
        token = load_or_create_token(self.profiles.directory(name))
        app = ApiApp(Router(Handlers(messenger, keepalive=1.0).routes()), token, document_bytes())
        listener = bind_api("127.0.0.1", 0)
        await self.nursery.start(self._run_client, messenger, app, listener)
        http = httpx.AsyncClient(
            base_url=listener.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        client = ApiClient(name, messenger, app, listener.url, token, http)
        self.clients.append(client)
        return client

    @staticmethod
    async def _run_client(
        messenger: Messenger, app: ApiApp, listener: Any, task_status: Any
    ) -> None:
        async with messenger.run(), trio.open_nursery() as nursery:
            await nursery.start(serve_api, app, listener)
            task_status.started()

    async def close(self) -> None:
        for client in self.clients:
            client.app.close()
            await client.http.aclose()
        self.nursery.cancel_scope.cancel()


@pytest.fixture
async def api_net(tmp_path: Path) -> AsyncIterator[ApiNet]:
    async with trio.open_nursery() as nursery:
        net = ApiNet(nursery, tmp_path, Profiles(tmp_path / "profiles"))
        try:
            yield net
        finally:
            await net.close()
    for store in net.stores:
        with contextlib.suppress(Exception):
            store.close()
