"""A `chinwag node` client frozen with SIGSTOP and resumed, as a suspended laptop is: it
notices the gap, drops its connections, reconnects, and health goes sleeping -> online.

The full minute of issue 7, with a chat client that must also catch up every message sent
meanwhile, is tests/integration/api/test_sleep_recovery.py; this short freeze covers the
bare node."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

STARTUP_DEADLINE = 30
RECOVERY_DEADLINE = 20


async def next_line(proc: trio.Process, buffer: bytearray) -> str:
    assert proc.stdout is not None
    while b"\n" not in buffer:
        chunk = await proc.stdout.receive_some(4096)
        assert chunk, f"the client exited early: {bytes(buffer)!r}"
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


async def wait_for_line(proc: trio.Process, buffer: bytearray, prefix: str) -> list[str]:
    seen = []
    while True:
        line = await next_line(proc, buffer)
        seen.append(line)
        if line.startswith(prefix):
            return seen


async def freeze_and_resume(tmp_path: Path, service_node: Any, gap: float) -> list[str]:
    await service_node.start()
    cmd = [sys.executable, "-m", "chat.cli", "--data-dir", str(tmp_path), "node",
           "--listen", "/ip4/127.0.0.1/tcp/0", "--cluster", "42", "--shard", "0",
           "--peer", service_node.address]  # fmt: skip
    proc = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE)
    buffer = bytearray()
    try:
        with trio.fail_after(STARTUP_DEADLINE):
            await wait_for_line(proc, buffer, "health online")
        proc.send_signal(signal.SIGSTOP)
        await trio.sleep(gap)  # real time: the point is that the process misses it
        proc.send_signal(signal.SIGCONT)
        with trio.fail_after(RECOVERY_DEADLINE):
            seen = await wait_for_line(proc, buffer, "health sleeping")
            seen += await wait_for_line(proc, buffer, "health online")
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(RECOVERY_DEADLINE):
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    return seen


async def test_a_frozen_client_notices_reconnects_and_comes_back_online(
    tmp_path: Path, service_node: Any
) -> None:
    seen = await freeze_and_resume(tmp_path, service_node, gap=7.0)
    states = [line.split()[1] for line in seen if line.startswith("health ")]
    assert states[states.index("sleeping") :][-1] == "online"
    assert "offline" in states[states.index("sleeping") :]  # its connections were reset
