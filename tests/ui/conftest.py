"""A real chinwag network for the TUI tests: a service node (relay + store) and headless
messengers run in a trio run on their own thread; the TUI under test runs its own messenger
in its trio guest run, inside Textual's asyncio loop on the test's thread. Everything talks
over loopback. Timers are shortened; the code paths are the production ones.

Pilot tests are plain (sync) test functions that `asyncio.run` a scenario, because Textual
runs on asyncio and pytest here runs async tests under trio.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
from harness.fast import FAST
from harness.waiting import screen_text, wait_until_in_app
from multiaddr import Multiaddr
from textual.app import App
from textual.pilot import Pilot

from chat.config import Config
from chat.identity_store import ensure_identity
from chat.messenger import Messenger, MessengerConfig
from chat.waku.node import NodeConfig
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions
from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.store import Store

T = TypeVar("T")

PASSPHRASE = "correct horse battery staple"
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def cheap_kdf() -> KdfParams:
    return KdfParams.fresh(opslimit=1, memlimit=8192)


@dataclass
class Network:
    """Service node and headless messengers on a trio thread of their own."""

    tmp: Path
    token: trio.lowlevel.TrioToken | None = None
    nursery: trio.Nursery | None = None
    service: ServiceNode | None = None
    messengers: dict[str, Messenger] = field(default_factory=dict)
    stores: dict[str, Store] = field(default_factory=dict)
    scopes: dict[str, trio.CancelScope] = field(default_factory=dict)
    _thread: threading.Thread | None = None
    _stop: trio.Event | None = None

    def start(self) -> None:
        ready = threading.Event()

        async def main() -> None:
            self.token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                ready.set()
                await self._stop.wait()
                nursery.cancel_scope.cancel()

        self._thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a trio coroutine function on the network thread; blocks until done."""
        return trio.from_thread.run(fn, *args, trio_token=self.token)

    async def arun(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`run` from asyncio code without blocking the UI's loop."""
        return await asyncio.to_thread(self.run, fn, *args)

    def start_service(self) -> str:
        service = ServiceNode(
            ServiceNodeConfig(
                node=NodeConfig(listen_addrs=[Multiaddr(LOOPBACK)]),
                store=StoreOptions(self.tmp / "archive" / "archive.sqlite"),
            )
        )
        self.scopes["service"] = self.run(self._start, service.run)
        self.service = service
        return self.service_addr()

    def service_addr(self) -> str:
        assert self.service is not None
        return str(self.service.node.full_multiaddrs()[0])

    def config(self, **overrides: Any) -> MessengerConfig:
        peers = (self.service_addr(),) if self.service is not None else ()
        return replace(FAST, peers=peers, **overrides)

    def start_messenger(self, name: str, **overrides: Any) -> Messenger:
        profiles = Profiles(self.tmp / "headless")
        store = profiles.create(
            name, PASSPHRASE, display_name=name.title(), now=1_000, kdf=cheap_kdf()
        )
        self.stores[name] = store
        messenger = Messenger(store, self.config(**overrides))
        self.scopes[name] = self.run(self._start, messenger.run)
        self.messengers[name] = messenger
        return messenger

    async def _start(
        self, context: Callable[[], contextlib.AbstractAsyncContextManager[Any]]
    ) -> trio.CancelScope:
        assert self.nursery is not None
        return await self.nursery.start(self._hold, context)

    @staticmethod
    async def _hold(
        context: Callable[[], contextlib.AbstractAsyncContextManager[Any]],
        task_status: trio.TaskStatus[trio.CancelScope],
    ) -> None:
        with trio.CancelScope() as scope:
            async with context():
                task_status.started(scope)
                await trio.sleep_forever()

    def stop(self, name: str) -> None:
        scope = self.scopes.pop(name)
        assert self.token is not None
        self.token.run_sync_soon(scope.cancel)

    def close(self) -> None:
        if self.token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self.token.run_sync_soon(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        for store in self.stores.values():
            with contextlib.suppress(Exception):
                store.close()


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    net = Network(tmp_path)
    net.start()
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(config_file=tmp_path / "config.toml", data_dir=tmp_path / "data")


@pytest.fixture
def make_profile(config: Config) -> Callable[[str], None]:
    """Create the configured profile (display name given) with its chat identity."""

    def create(display_name: str) -> None:
        profiles = Profiles(config.profiles_dir)
        store = profiles.create(
            config.profile, PASSPHRASE, display_name=display_name, now=1_000, kdf=cheap_kdf()
        )
        with store:
            ensure_identity(store, 1_000.0)

    return create


async def wait_for_text(pilot: Pilot[Any], text: str, *, limit: float = 30.0) -> None:
    await wait_until_in_app(pilot, lambda: text in screen_text(pilot.app), limit, what=repr(text))


@dataclass(frozen=True)
class Helpers:
    screen_text: Callable[[App[Any]], str] = screen_text
    wait_until: Callable[..., Awaitable[None]] = wait_until_in_app
    wait_for_text: Callable[..., Awaitable[None]] = wait_for_text
    passphrase: str = PASSPHRASE
    cheap_kdf: Callable[[], KdfParams] = cheap_kdf


@pytest.fixture
def ui() -> Helpers:
    """Screen-reading and waiting helpers (a fixture: importlib mode has no conftest imports)."""
    return Helpers()
