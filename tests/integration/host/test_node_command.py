"""`chinwag node` as a real subprocess: prints its addresses, serves metadata, stops on signals."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from multiaddr import Multiaddr

from chat.waku.metadata.core import Verdict
from chat.waku.metadata.wire import ShardInfo
from chat.waku.node import Node, NodeConfig

DEADLINE = 30


async def read_until_addresses(proc: trio.Process, count: int = 1) -> list[str]:
    assert proc.stdout is not None
    buf = b""
    while buf.count(b"/p2p/") < count or not buf.endswith(b"\n"):
        chunk = await proc.stdout.receive_some(4096)
        assert chunk, f"node exited early: {buf!r}"
        buf += chunk
    return buf.decode().splitlines()


async def finish(proc: trio.Process) -> str:
    assert proc.stdout is not None
    rest = b""
    while chunk := await proc.stdout.receive_some(4096):
        rest += chunk
    await proc.wait()
    return rest.decode()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_node_prints_addresses_serves_and_stops_on_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    key = tmp_path / "key" / "nodekey"
    cmd = [sys.executable, "-m", "chat.cli", "--data-dir", str(tmp_path / "data"), "node",
           "--listen", "/ip4/127.0.0.1/tcp/0", "--ws-port", "0", "--cluster", "42",
           "--shard", "0", "--shard", "7", "--node-key", str(key)]  # fmt: skip
    with trio.fail_after(DEADLINE):
        proc = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE)
        try:
            lines = await read_until_addresses(proc, count=2)
            header, addrs = lines[0], lines[1:]
            assert header.startswith("chinwag node 16Uiu2") and "cluster 42 shards 0,7" in header
            assert any("/ws/p2p/" in a for a in addrs)
            assert key.exists()
            probe = Node(NodeConfig(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")]))
            outcomes = probe.metadata.subscribe()
            async with probe.run():
                tcp = next(a for a in addrs if "/ws/" not in a)
                await probe.host.dial(tcp)
                outcome = await outcomes.receive()
                assert outcome.verdict is Verdict.ACCEPTED
                assert outcome.remote == ShardInfo(42, (0, 7))
            proc.send_signal(signum)
            tail = await finish(proc)
        finally:
            if proc.returncode is None:
                proc.kill()
    assert proc.returncode == 0
    assert "chinwag node stopped" in tail


async def test_node_keeps_its_identity_across_restarts(tmp_path: Path) -> None:
    key = tmp_path / "nodekey"
    cmd = [sys.executable, "-m", "chat.cli", "--data-dir", str(tmp_path), "node",
           "--listen", "/ip4/127.0.0.1/tcp/0", "--node-key", str(key)]  # fmt: skip
    headers = []
    with trio.fail_after(DEADLINE):
        for _ in range(2):
            proc = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE)
            try:
                headers.append((await read_until_addresses(proc))[0])
                proc.send_signal(signal.SIGTERM)
                await finish(proc)
            finally:
                if proc.returncode is None:
                    proc.kill()
            assert proc.returncode == 0
    assert headers[0] == headers[1]
