"""Black-box network test: two `chinwag node` processes in their own network namespaces joined
by a veth pair (addresses from TEST-NET-2, reachable only inside the namespaces). The
client's link is cut and restored; it must notice (its addresses change), go offline, come
back online by itself. Then the same over a slow lossy link (tests/harness/impairment.py:
tc netem, or iptables + our NFQUEUE delayer where the kernel has no sch_netem), and a check
that the impairment really delays what crosses the link.

Needs root, `ip netns` and veth; the impaired link needs tc netem or iptables. Each missing
piece skips with the reason. Every namespace is deleted at the end, whatever happened.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from harness.impairment import LinkImpairment, Unavailable, impaired
from harness.netns import namespaces_problem

SERVER_IP = "198.51.100.1"
CLIENT_IP = "198.51.100.2"
PORT = 60000
STARTUP_DEADLINE = 30
CHANGE_DEADLINE = 30


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=10)


class Link:
    """Two namespaces, `srv` and `cli`, joined by veth; the client has a default route."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.server = f"cwsrv{tag}"
        self.client = f"cwcli{tag}"
        self.client_dev = "vcli"

    def up(self) -> None:
        steps = [
            ("ip", "netns", "add", self.server),
            ("ip", "netns", "add", self.client),
            ("ip", "-n", self.server, "link", "add", "name", "vsrv", "type", "veth",
             "peer", "name", self.client_dev, "netns", self.client),
            ("ip", "-n", self.server, "addr", "add", f"{SERVER_IP}/24", "dev", "vsrv"),
            ("ip", "-n", self.client, "addr", "add", f"{CLIENT_IP}/24", "dev", self.client_dev),
        ]  # fmt: skip
        for ns in (self.server, self.client):
            steps.append(("ip", "-n", ns, "link", "set", "lo", "up"))
        steps.append(("ip", "-n", self.server, "link", "set", "vsrv", "up"))
        steps.extend(self.client_link("up"))
        for step in steps:
            done = _run(*step)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(step)}: {done.stderr.strip()}")

    def client_link(self, state: str) -> list[tuple[str, ...]]:
        steps: list[tuple[str, ...]] = [
            ("ip", "-n", self.client, "link", "set", self.client_dev, state)
        ]
        if state == "up":
            steps.append(("ip", "-n", self.client, "route", "replace", "default",
                          "dev", self.client_dev))  # fmt: skip
        return steps

    def set_client_link(self, state: str) -> None:
        for step in self.client_link(state):
            done = _run(*step)
            assert done.returncode == 0, done.stderr

    def down(self) -> None:
        for ns in (self.server, self.client):
            _run("ip", "netns", "del", ns)


@pytest.fixture
def link() -> Iterator[Link]:
    problem = namespaces_problem()
    if problem:
        pytest.skip(problem)
    made = Link()
    try:
        made.up()
        yield made
    finally:
        made.down()


class Proc:
    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self.buffer = bytearray()

    async def line(self) -> str:
        assert self.proc.stdout is not None
        while b"\n" not in self.buffer:
            chunk = await self.proc.stdout.receive_some(4096)
            assert chunk, f"the node exited early: {bytes(self.buffer)!r}"
            self.buffer += chunk
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer[:] = rest
        return line.decode()

    async def until(self, prefix: str) -> list[str]:
        seen = []
        while not (seen and seen[-1].startswith(prefix)):
            seen.append(await self.line())
        return seen


def client_args_for(tmp_path: Path, server_address: str) -> list[str]:
    return ["--data-dir", str(tmp_path / "cli"), "node", "--listen",
            f"/ip4/{CLIENT_IP}/tcp/{PORT}", "--shard", "0", "--peer", server_address]  # fmt: skip


@asynccontextmanager
async def node_in(namespace: str, args: Sequence[str]) -> AsyncIterator[Proc]:
    cmd = ["ip", "netns", "exec", namespace, sys.executable, "-m", "chat.cli", *args]
    proc = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE)
    try:
        yield Proc(proc)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(10):
                await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_cut_link_is_noticed_and_the_client_comes_back_by_itself(
    link: Link, tmp_path: Path
) -> None:
    server_args = ["--data-dir", str(tmp_path / "srv"), "node", "--listen",
                   f"/ip4/{SERVER_IP}/tcp/{PORT}", "--shard", "0"]  # fmt: skip
    with trio.fail_after(STARTUP_DEADLINE):
        async with node_in(link.server, server_args) as server:
            header = await server.line()
            address = (await server.line()).strip()
            assert header.startswith("chinwag node") and address.startswith(f"/ip4/{SERVER_IP}")
            client_args = client_args_for(tmp_path, address)
            async with node_in(link.client, client_args) as client:
                await client.until("health online")
                link.set_client_link("down")
                with trio.fail_after(CHANGE_DEADLINE):
                    await client.until("health offline")
                link.set_client_link("up")
                with trio.fail_after(CHANGE_DEADLINE):
                    await client.until("health online")


SLOW_LOSSY = LinkImpairment(delay_ms=100, jitter_ms=20, loss_percent=2)


async def test_the_client_comes_online_over_a_slow_lossy_link(link: Link, tmp_path: Path) -> None:
    """100 ms ± 20 ms delay and 2 % loss on the client's side."""
    server_args = ["--data-dir", str(tmp_path / "srv"), "node", "--listen",
                   f"/ip4/{SERVER_IP}/tcp/{PORT}", "--shard", "0"]  # fmt: skip
    try:
        async with impaired(link.client, link.client_dev, SLOW_LOSSY, log_dir=tmp_path):
            with trio.fail_after(STARTUP_DEADLINE * 2):
                async with node_in(link.server, server_args) as server:
                    await server.line()
                    address = (await server.line()).strip()
                    client_args = client_args_for(tmp_path, address)
                    async with node_in(link.client, client_args) as client:
                        await client.until("health online")
    except Unavailable as why:
        pytest.skip(str(why))


CONNECT_PROBE = """
import socket, sys, time
started = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10).close()
except ConnectionRefusedError:
    pass
print(time.monotonic() - started)
"""


async def test_the_impairment_delays_what_crosses_the_link(link: Link, tmp_path: Path) -> None:
    """A TCP connect to a closed port across the link: the SYN leaves through the impaired
    device, so the refusal cannot come back before the delay minus the jitter. (A lower
    bound only: the network delay is what is under test here, and a busy machine only adds.)"""
    spec = LinkImpairment(delay_ms=500, jitter_ms=50, loss_percent=0)
    probe = ["ip", "netns", "exec", link.client, sys.executable, "-c", CONNECT_PROBE,
             SERVER_IP, str(PORT)]  # fmt: skip
    try:
        async with impaired(link.client, link.client_dev, spec, log_dir=tmp_path) as made:
            for _ in range(3):
                done = await trio.run_process(probe, capture_stdout=True)
                assert float(done.stdout) >= 0.45, (made.backend, done.stdout)
    except Unavailable as why:
        pytest.skip(str(why))
    if made.backend == "netfilter":
        assert "queued=" in made.delayer_report and "queued=0," not in made.delayer_report
