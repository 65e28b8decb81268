"""The Node.js side of the interop tests: js-waku / js-libp2p peers in subprocesses.

Each JS peer is `node <stack>/node.mjs '<json config>'`; it reports events as JSON lines on
stdout and takes JSON commands on stdin (see common/lines.mjs). Everything it needs comes from
the stack's lockfile via `scripts/setup.sh --test` (npm ci); nothing is fetched at test time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

HERE = Path(__file__).parent
STACKS = ("sdk027", "gossipsub14", "sdk036")
"""sdk027: @waku/sdk 0.0.27 createRelayNode (libp2p 1.x). gossipsub14: libp2p 2.x + gossipsub 14.
sdk036: @waku/sdk 0.0.36 createLightNode (libp2p 2.8): light push, filter and store."""
START_TIMEOUT = 30
CALL_TIMEOUT = 30


class JsError(Exception):
    pass


class JsPeer:
    def __init__(self, proc: trio.Process, stack: str) -> None:
        self.proc = proc
        self.stack = stack
        self.events: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        """Relay deliveries ("message" events), kept apart so waiting on other events stays
        cheap when thousands of messages arrive."""
        self.peer_id = ""
        self.addrs: list[str] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._changed = trio.Event()
        self._next_id = 0
        self.stderr_tail: list[str] = []

    async def pump(self) -> None:
        assert self.proc.stdout is not None
        buf = b""
        while chunk := await self.proc.stdout.receive_some(65536):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue  # libraries occasionally print to stdout
                if "reply" in obj:
                    self._replies[obj["reply"]] = obj
                elif obj.get("event") == "message":
                    self.messages.append(obj)
                else:
                    self.events.append(obj)
                self._changed.set()
                self._changed = trio.Event()
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = CALL_TIMEOUT
    ) -> dict[str, Any]:
        with trio.fail_after(within):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                if self.proc.returncode is not None:
                    raise JsError(f"{self.stack} exited: {self.stderr_tail[-20:]}")
                await self._changed.wait()

    async def wait_messages(self, count: int, within: float = CALL_TIMEOUT) -> None:
        """Returns once at least `count` relay messages have been delivered to this peer."""
        with trio.fail_after(within):
            while len(self.messages) < count:
                if self.proc.returncode is not None:
                    raise JsError(f"{self.stack} exited: {self.stderr_tail[-20:]}")
                await self._changed.wait()

    async def call(self, cmd: str, within: float = CALL_TIMEOUT, **args: Any) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        assert self.proc.stdin is not None
        await self.proc.stdin.send_all(
            json.dumps({"id": ident, "cmd": cmd, **args}).encode() + b"\n"
        )
        with trio.fail_after(within):
            while ident not in self._replies:
                if self.proc.returncode is not None:
                    raise JsError(f"{self.stack} exited during {cmd}")
                await self._changed.wait()
        reply = self._replies.pop(ident)
        if not reply.get("ok"):
            raise JsError(f"{self.stack} {cmd} failed: {reply.get('error')}")
        return reply


def _node_binary() -> str:
    node = shutil.which("node")
    # The interop tests are part of the full suite: without Node.js they fail, loudly. Run
    # `make test` (it installs the harness) or deselect them with `-m "not interop"`.
    if node is None:
        pytest.fail("the interop tests need Node.js >= 20 on PATH; `make test` explains how")
    return node


async def _drain_stderr(peer: JsPeer) -> None:
    assert peer.proc.stderr is not None
    while chunk := await peer.proc.stderr.receive_some(65536):
        peer.stderr_tail.extend(chunk.decode(errors="replace").splitlines())
        del peer.stderr_tail[:-200]


@asynccontextmanager
async def js_peer(stack: str, **config: Any) -> AsyncIterator[JsPeer]:
    """Start a JS peer, wait for it to listen, and stop it (stdin EOF, then kill) afterwards."""
    folder = HERE / stack
    if not (folder / "node_modules").is_dir():
        pytest.fail(f"{folder}/node_modules is missing: run scripts/setup.sh --test")
    env = {**os.environ, "NODE_ENV": "test"}
    cmd = [_node_binary(), "--import", "../common/polyfill.mjs", "node.mjs", json.dumps(config)]
    proc = await trio.lowlevel.open_process(
        cmd,
        cwd=folder,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    peer = JsPeer(proc, stack)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.pump)
            nursery.start_soon(_drain_stderr, peer)
            ready = await peer.wait_for(lambda e: e.get("event") == "ready", START_TIMEOUT)
            peer.peer_id, peer.addrs = ready["peerId"], ready["addrs"]
            try:
                yield peer
            finally:
                with trio.move_on_after(5) as cleanup:
                    cleanup.shield = True
                    assert proc.stdin is not None
                    await proc.stdin.aclose()
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                nursery.cancel_scope.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()


@pytest.fixture
def start_js() -> Callable[..., Any]:
    return js_peer
