"""The real processes of a `chinwag lab run`: service nodes (`chinwag node --store`) and
headless clients (`chinwag serve`), each started from the lab's own data directory, and the
signals that fault them (SIGKILL, SIGSTOP/SIGCONT). A killed process is started again with the
same command: the same node key and port, the same profile."""

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

LAB_PASSPHRASE = "chinwag lab passphrase"
"""The lab's throw-away profiles (in its own data directory) all use this one."""
START_LIMIT = 60.0
MAX_LINE = 4096


class LabProcessError(RuntimeError):
    """A lab process would not start (its stderr's tail is in the message)."""


@dataclass
class LabProcess:
    name: str
    command: list[str]
    stderr_path: Path
    process: trio.Process | None = None
    paused: bool = False
    restarting: bool = False
    """Stopped to be started again with other flags (a clock skew): not there to talk to."""
    restarts: int = 0
    _buffer: bytes = b""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def reachable(self) -> bool:
        return self.running and not self.paused and not self.restarting

    async def start(self, env: dict[str, str]) -> None:
        with self.stderr_path.open("ab") as err:
            self.process = await trio.lowlevel.open_process(
                self.command, stdout=subprocess.PIPE, stderr=err, env=env
            )
        self._buffer = b""
        self.paused = False

    async def line(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        with trio.fail_after(START_LIMIT):
            while b"\n" not in self._buffer:
                chunk = await self.process.stdout.receive_some(MAX_LINE)
                if not chunk:
                    tail = self.stderr_path.read_text(errors="replace")[-2000:]
                    raise LabProcessError(f"{self.name} ended while starting:\n{tail}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")

    def signal(self, signum: signal.Signals) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signum)
            if signum == signal.SIGSTOP:
                self.paused = True
            elif signum == signal.SIGCONT:
                self.paused = False

    async def stop(self) -> None:
        """SIGTERM and wait: a clean stop (the profile is closed, peers are told)."""
        if self.running:
            assert self.process is not None
            self.process.terminate()
            with trio.move_on_after(START_LIMIT):
                await self.process.wait()
        await self.kill()

    async def kill(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.kill()
            await self.process.wait()
        self.paused = False

    async def drain(self) -> None:
        """Read stdout until it closes, so a chatty process never blocks on a full pipe."""
        process = self.process
        if process is None or process.stdout is None:
            return
        while await process.stdout.receive_some(MAX_LINE):
            pass


@dataclass
class ServiceNode:
    process: LabProcess
    port: int
    host: str = "127.0.0.1"
    """Where it listens (in its namespace, if it has one)."""
    peer_id: str = ""
    metrics_url: str = ""

    async def mesh_peers(self, shard: int = 0, cluster: int = 42) -> int:
        """Peers in the node's relay mesh on a shard, from its /metrics."""
        series = f'chinwag_relay_mesh_peers{{topic="/waku/2/rs/{cluster}/{shard}"}} '
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(self.metrics_url)).text
        for line in text.splitlines():
            if line.startswith(series):
                return int(float(line.split()[-1]))
        return 0

    async def validation(self) -> dict[str, int]:
        """The relay validator's verdicts other than accept ("relay ignore/out_of_window": 1,
        ...) and its light push answers by version and status, from /metrics."""
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(self.metrics_url)).text
        counts: dict[str, int] = {}
        for line in text.splitlines():
            labels, _, value = line.rpartition(" ")
            if line.startswith("chinwag_relay_validation_total{") and "accept" not in labels:
                outcome = _label(labels, "outcome")
                key = f"relay {outcome}/{_label(labels, 'reason')}".rstrip("/")
            elif line.startswith("chinwag_lightpush_requests_total{"):
                key = f"lightpush {_label(labels, 'version')} {_label(labels, 'status')}"
            else:
                continue
            if int(float(value)):
                counts[key] = counts.get(key, 0) + int(float(value))
        return counts

    async def wire_bytes(self) -> dict[str, int]:
        """Bytes in and out over every connection since the node started, from /metrics."""
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(self.metrics_url)).text
        totals = {"in": 0, "out": 0}
        for line in text.splitlines():
            if line.startswith("chinwag_bandwidth_bytes_total{"):
                labels, _, value = line.rpartition(" ")
                for direction in totals:
                    if f'direction="{direction}"' in labels:
                        totals[direction] += int(float(value))
        return totals


def _label(labels: str, name: str) -> str:
    start = labels.find(f'{name}="')
    if start < 0:
        return ""
    start += len(name) + 2
    return labels[start : labels.find('"', start)]


@dataclass
class Client:
    process: LabProcess
    profile: str
    api_url: str = ""
    token: str = ""
    chat_key: str = ""
    contact_link: str = ""
    http: httpx.AsyncClient | None = None

    def connect(self) -> httpx.AsyncClient:
        self.http = httpx.AsyncClient(
            base_url=self.api_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=5
        )
        return self.http


@dataclass(frozen=True, slots=True)
class ClientFlags:
    """How a client's `chinwag serve` runs."""

    light: bool = False
    loss: float = 0.0
    """--drop-frames (relay clients only)."""
    timer_scale: float = 1.0
    clock_offset: float = 0.0
    """Seconds its clock is off (--clock-offset; a clock_skew fault)."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a lab process runs: the command prefix that puts it there (`ip netns exec NAME`)
    and the address it listens on (and the lab reaches it at)."""

    wrapper: tuple[str, ...] = ()
    host: str = "127.0.0.1"


@dataclass
class LabCommands:
    """The `chinwag` command lines, all on one data directory."""

    data_dir: Path
    processes: list[LabProcess] = field(default_factory=list)
    placements: dict[str, Placement] = field(default_factory=dict)
    """Process name -> its namespace; absent: loopback in the lab's own namespace."""

    def base(self) -> list[str]:
        return [sys.executable, "-m", "chat.cli", "--data-dir", str(self.data_dir)]

    def placement(self, name: str) -> Placement:
        return self.placements.get(name, Placement())

    def env(self) -> dict[str, str]:
        return {**os.environ, PASSPHRASE_ENV: LAB_PASSPHRASE}

    async def create_profile(self, name: str) -> None:
        done = await trio.run_process(
            [*self.base(), "profile", "create", name, "--display-name", name.title()],
            env=self.env(), capture_stdout=True, capture_stderr=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise LabProcessError(f"cannot create profile {name}: {done.stderr.decode()[-500:]}")

    def node_process(
        self,
        name: str,
        port: int,
        peer_exchange: bool,
        shards: Sequence[int] = (),
        light_services: bool = False,
        peers: Sequence[str] = (),
    ) -> LabProcess:
        place = self.placement(name)
        command = [
            *place.wrapper, *self.base(), "node", "--store",
            "--listen", f"/ip4/{place.host}/tcp/{port}",
            "--node-key", str(self.data_dir / f"{name}.key"),
            "--archive", str(self.data_dir / f"{name}.sqlite"), "--metrics", f"{place.host}:0",
        ]  # fmt: skip
        if not peer_exchange:
            command.append("--no-peer-exchange")
        if light_services:  # for light clients
            command += ["--filter", "--lightpush"]
        for peer in peers:  # the other service nodes: their relay mesh
            command += ["--peer", peer]
        for shard in shards:  # none: the node's default shards
            command += ["--shard", str(shard)]
        return self._process(name, command)

    def client_process(self, name: str, peers: Sequence[str], flags: ClientFlags) -> LabProcess:
        return self._process(name, self.command_for_client(name, peers, flags))

    def command_for_client(self, name: str, peers: Sequence[str], flags: ClientFlags) -> list[str]:
        place = self.placement(name)
        command = [
            *place.wrapper, *self.base(), "--profile", name, "serve", "--api", f"{place.host}:0",
            "--listen", "/ip4/127.0.0.1/tcp/0", *(a for p in peers for a in ("--peer", p)),
        ]  # fmt: skip
        if flags.light:
            command.append("--light")
        if flags.loss:
            command += ["--drop-frames", str(flags.loss)]
        if flags.timer_scale != 1.0:
            command += ["--timer-scale", str(flags.timer_scale)]
        if flags.clock_offset:
            command += ["--clock-offset", str(flags.clock_offset)]
        return command

    def _process(self, name: str, command: list[str]) -> LabProcess:
        process = LabProcess(name, command, self.data_dir / f"{name}.stderr.txt")
        self.processes.append(process)
        return process

    async def close(self) -> None:
        for process in self.processes:
            if process.paused:
                process.signal(signal.SIGCONT)
            await process.kill()


async def start_node(node: ServiceNode, env: dict[str, str], nursery: trio.Nursery) -> None:
    """Start (or restart) a service node and read its peer id from its first address."""
    await node.process.start(env)
    header = await node.process.line()
    if not header.startswith("chinwag node "):
        raise LabProcessError(f"{node.process.name}: unexpected first line {header!r}")
    address = await node.process.line()
    node.peer_id = address.rpartition("/p2p/")[2]
    while not (line := await node.process.line()).startswith("metrics "):
        pass
    node.metrics_url = line.removeprefix("metrics ")
    nursery.start_soon(node.process.drain)


async def start_client(client: Client, env: dict[str, str], nursery: trio.Nursery) -> None:
    """Start (or restart) a client; its API address changes on every start."""
    await client.process.start(env)
    while (line := await client.process.line()) != "ready":
        name, _, value = line.partition(": ")
        if name == "api":
            client.api_url = value
        elif name == "token":
            client.token = value
        elif name == "chat_key":
            client.chat_key = value
    if client.http is not None:
        await client.http.aclose()
    client.connect()
    nursery.start_soon(client.process.drain)
