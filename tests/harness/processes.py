"""Real `chinwag` processes for black-box tests: a service node (`chinwag node --store`) and
chat clients (`chinwag serve`, driven over its REST API), started from one data directory,
optionally inside a network namespace. Every process left is killed on close.

Imported by conftest files (pytest's `pythonpath` puts tests/ on sys.path)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio

from chat.config import PASSPHRASE_ENV
from harness.waiting import wait_until

PASSPHRASE = "correct horse battery staple"


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
    addrs: list[str] = field(default_factory=list)
    """Every multiaddr it printed (`addr` is the first)."""

    async def mesh_peers(self, shard: int = 0, cluster: int = 42) -> int:
        """How many peers the node has in its relay mesh on a shard, from /metrics."""
        series = f'chinwag_relay_mesh_peers{{topic="/waku/2/rs/{cluster}/{shard}"}} '
        async with httpx.AsyncClient() as http:
            text = (await http.get(self.metrics_url)).text
        return next(int(float(line.split()[-1])) for line in text.splitlines()
                    if line.startswith(series))  # fmt: skip

    async def wait_for_mesh(self, peers: int, limit: float = 30.0, cluster: int = 42) -> None:
        """Until the node forwards to `peers` clients: before that, a message published by
        one client can miss another that is connected but not yet grafted (store catch-up
        would find it, but only on its next scan)."""

        async def meshed() -> bool:
            return await self.mesh_peers(cluster=cluster) >= peers

        await wait_until(meshed, limit, what=f"the node to forward to {peers} clients")


@dataclass
class Chinwag:
    """Runs the real `chinwag` command against one data directory; kills what is left."""

    data_dir: Path
    host: str = "127.0.0.1"
    """The address nodes listen on."""
    http_host: str = "127.0.0.1"
    """Where serve's API and the node's metrics bind: another address when the test reaches a
    process in a network namespace over a management link."""
    wrapper: Sequence[str] = ()
    """A command prefix, e.g. `ip netns exec NAME` to run inside a network namespace."""
    processes: list[ChinwagProcess] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        chinwag = [sys.executable, "-m", "chat.cli", "--data-dir", str(self.data_dir), *args]
        return [*self.wrapper, *chinwag]

    def env(self) -> dict[str, str]:
        return {**os.environ, PASSPHRASE_ENV: PASSPHRASE}

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run to the end; `env`: instead of `env()` (e.g. without the passphrase)."""
        return subprocess.run(
            self.command(*args), capture_output=True, text=True,
            env=self.env() if env is None else env, timeout=PROCESS_DEADLINE, check=False,
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

    async def start_node(
        self, listen: Sequence[str] = (), extra: Sequence[str] = ()
    ) -> ServiceNodeProcess:
        """A `chinwag node --store` on `host` (or on each of the `listen` multiaddrs), with its
        metrics endpoint on `http_host`; `extra`: more options (`--cluster 7`, ...)."""
        addresses = listen or [f"/ip4/{self.host}/tcp/0"]
        node = await self.start(
            "node", "--store", *(a for addr in addresses for a in ("--listen", addr)),
            "--metrics", f"{self.http_host}:0",
            "--node-key", str(self.data_dir / "node.key"),
            "--archive", str(self.data_dir / "archive.sqlite"), *extra,
        )  # fmt: skip
        header = await node.line()
        assert header.startswith("chinwag node "), header
        addrs = [await node.line()]
        while not (line := await node.line()).startswith("metrics "):
            addrs.append(line)
        return ServiceNodeProcess(node, addrs[0], line.removeprefix("metrics "), addrs)

    async def serve(self, profile: str, *peers: str, extra: Sequence[str] = ()) -> Served:
        options = [a for p in peers for a in ("--peer", p)]
        process = await self.start(
            "--profile", profile, "serve", "--api", f"{self.http_host}:0",
            "--listen", f"/ip4/{self.host}/tcp/0", *options, *extra,
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
