"""A chinwag network in one process for the REST API: a service node (relay + store) and
messengers with real profiles, each behind its own API server on 127.0.0.1, driven over
real HTTP. Timers are shortened so scenarios take seconds; the code paths are the real ones."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from multiaddr import Multiaddr

from chat.api.app import ApiApp
from chat.api.auth import load_or_create_token
from chat.api.handlers import Handlers
from chat.api.openapi import document_bytes
from chat.api.routing import Router
from chat.api.server import bind_api, serve_api
from chat.config import PASSPHRASE_ENV
from chat.contacts import RequestPolicy
from chat.messenger import Messenger, MessengerConfig
from chat.reliability.outbox import RetryPolicy
from chat.reliability.store_checks import StoreCheckParams
from chat.waku.node import NodeConfig
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions
from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.store import Store

PASSPHRASE = "correct horse battery staple"
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def fast_config(peers: tuple[str, ...]) -> MessengerConfig:
    return MessengerConfig(
        listen_addrs=(LOOPBACK,),
        peers=peers,
        retry=RetryPolicy(first_delay=0.5, max_delay=2.0, ack_timeout=3.0, max_resend_delay=6.0),
        requests=RequestPolicy(first_resend=2.0, max_resend_delay=6.0),
        store_checks=StoreCheckParams(
            first_check_after=0.3,
            check_every=0.5,
            settle=0.5,
            overlap=5.0,
            scan_every=2.0,
            retry_failed_after=0.5,
            max_fetch_delay=2.0,
        ),
        sync_delay=0.3,
    )


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


async def poll(predicate: Callable[[], Awaitable[bool]], limit: float = 30.0) -> None:
    """Wait for a condition that real network I/O makes true, asking over HTTP."""
    with trio.fail_after(limit):
        while True:
            if await predicate():
                return
            await trio.sleep(0.05)  # the condition depends on socket I/O, not on an event


@pytest.fixture
def until() -> Callable[..., Awaitable[None]]:
    return poll


# ---- real `chinwag` processes --------------------------------------------------------------
PROCESS_DEADLINE = 60.0


class ChinwagProcess:
    """A `chinwag` subprocess whose stdout is read line by line (stderr goes to a file)."""

    def __init__(self, process: trio.Process, stderr: Path) -> None:
        self.process = process
        self.stderr_path = stderr
        self._buffer = b""

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def line(self, limit: float = PROCESS_DEADLINE) -> str:
        assert self.process.stdout is not None
        with trio.fail_after(limit):
            while b"\n" not in self._buffer:
                chunk = await self.process.stdout.receive_some(65536)
                if not chunk:
                    raise AssertionError(f"chinwag ended early; stderr:\n{self.stderr}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    async def until(self, last: str, limit: float = PROCESS_DEADLINE) -> list[str]:
        """Every line up to and including `last`."""
        lines: list[str] = []
        with trio.fail_after(limit):
            while not lines or lines[-1] != last:
                lines.append(await self.line())
        return lines

    async def rest(self, limit: float = PROCESS_DEADLINE) -> str:
        """The remaining stdout, once the process closes it."""
        assert self.process.stdout is not None
        with trio.fail_after(limit):
            while chunk := await self.process.stdout.receive_some(65536):
                self._buffer += chunk
        rest, self._buffer = self._buffer, b""
        return rest.decode()

    async def wait(self, limit: float = PROCESS_DEADLINE) -> int:
        with trio.fail_after(limit):
            return await self.process.wait()

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signum)


@dataclass
class Served:
    """What `chinwag serve` printed on start."""

    process: ChinwagProcess
    fields: dict[str, str]
    listening: list[str]

    @property
    def url(self) -> str:
        return self.fields["api"]

    @property
    def token(self) -> str:
        return self.fields["token"]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )


@dataclass
class ServiceNodeProcess:
    process: ChinwagProcess
    addr: str
    metrics_url: str

    async def mesh_peers(self, shard: int = 0) -> int:
        """How many peers the node has in its relay mesh on a shard, from /metrics."""
        series = f'chinwag_relay_mesh_peers{{topic="/waku/2/rs/42/{shard}"}} '
        async with httpx.AsyncClient() as http:
            text = (await http.get(self.metrics_url)).text
        return next(int(float(line.split()[-1])) for line in text.splitlines()
                    if line.startswith(series))  # fmt: skip

    async def wait_for_mesh(self, peers: int, limit: float = 30.0) -> None:
        """Until the node forwards to `peers` clients: before that, a message published by
        one client can miss another that is connected but not yet grafted (store catch-up
        would find it, but only on its next scan)."""

        async def meshed() -> bool:
            return await self.mesh_peers() >= peers

        await poll(meshed, limit)


@dataclass
class Chinwag:
    """Runs the real `chinwag` command against one data directory; kills what is left."""

    data_dir: Path
    processes: list[ChinwagProcess] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "chat.cli", "--data-dir", str(self.data_dir), *args]

    def env(self) -> dict[str, str]:
        return {**os.environ, PASSPHRASE_ENV: PASSPHRASE}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, env=self.env(),
            timeout=PROCESS_DEADLINE, check=False,
        )  # fmt: skip

    async def start(self, *args: str) -> ChinwagProcess:
        stderr = self.data_dir / f"stderr-{len(self.processes)}.txt"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with stderr.open("wb") as err:
            process = await trio.lowlevel.open_process(
                self.command(*args), stdout=subprocess.PIPE, stderr=err, env=self.env()
            )
        started = ChinwagProcess(process, stderr)
        self.processes.append(started)
        return started

    def create_profile(self, name: str) -> None:
        done = self.run("profile", "create", name, "--display-name", name.title())
        assert done.returncode == 0, done.stderr
        assert f"created profile '{name}'" in done.stdout

    async def start_node(self) -> ServiceNodeProcess:
        """A `chinwag node --store` on loopback, with its metrics endpoint."""
        node = await self.start(
            "node", "--store", "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "0",
            "--node-key", str(self.data_dir / "node.key"),
            "--archive", str(self.data_dir / "archive.sqlite"),
        )  # fmt: skip
        header = await node.line()
        assert header.startswith("chinwag node "), header
        addr = await node.line()
        metrics = await node.line()
        assert metrics.startswith("metrics "), metrics
        return ServiceNodeProcess(node, addr, metrics.removeprefix("metrics "))

    async def serve(self, profile: str, *peers: str) -> Served:
        options = [a for p in peers for a in ("--peer", p)]
        process = await self.start(
            "--profile", profile, "serve", "--api", "127.0.0.1:0",
            "--listen", "/ip4/127.0.0.1/tcp/0", *options,
        )  # fmt: skip
        lines = await process.until("ready")
        fields: dict[str, str] = {}
        listening: list[str] = []
        for line in lines[:-1]:
            name, sep, value = line.partition(": ")
            assert sep, f"not a 'name: value' line: {line!r}"
            if name == "listening":
                listening.append(value)
            else:
                fields[name] = value
        return Served(process, fields, listening)

    async def close(self) -> None:
        for process in self.processes:
            if process.process.returncode is None:
                process.process.kill()
                await process.process.wait()


@pytest.fixture
async def chinwag(tmp_path: Path) -> AsyncIterator[Chinwag]:
    runner = Chinwag(tmp_path / "data")
    try:
        yield runner
    finally:
        with trio.CancelScope(shield=True):
            await runner.close()
