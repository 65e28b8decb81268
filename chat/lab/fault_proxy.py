"""A TCP relay in the lab's namespace between a client and a service node that delays,
throttles or cuts the link (chat.lab.link_shaper decides when each chunk goes; this module
only moves bytes).

The client dials the proxy's port with the node's peer id; the proxy dials the node. Each
direction has its own shaper, so a cap or a delay acts both ways as on a real link. A cut
closes every connection through the proxy and refuses new ones until it is restored."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass, field
from typing import Any

import trio

from chat.lab.link_shaper import LinkShape, LinkShaper

QUEUED_CHUNKS = 64
"""Chunks held per direction: beyond that the proxy stops reading (TCP backpressure)."""


@dataclass
class FaultProxy:
    target_port: int
    target_host: str = "127.0.0.1"
    listen_host: str = "127.0.0.1"
    """Where the client dials it: loopback, or the lab's end of the client's namespace link."""
    rng: random.Random = field(default_factory=random.Random)
    port: int = 0
    cut: bool = False
    connections: int = 0
    bytes_relayed: int = 0
    _shape: LinkShape = field(default_factory=LinkShape)
    _scopes: set[trio.CancelScope] = field(default_factory=set)

    def set_shape(self, shape: LinkShape) -> None:
        """New latency/jitter/cap for every connection (current and future)."""
        self._shape.latency, self._shape.jitter = shape.latency, shape.jitter
        self._shape.rate_bps = shape.rate_bps

    def set_cut(self, cut: bool) -> None:
        self.cut = cut
        if cut:
            for scope in self._scopes:
                scope.cancel()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host=self.listen_host)
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started(self.port)
            await trio.serve_listeners(self._accepted, listeners, handler_nursery=nursery)

    async def _accepted(self, client: trio.SocketStream) -> None:
        if self.cut:
            await client.aclose()
            return
        with trio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                server = await trio.open_tcp_stream(self.target_host, self.target_port)
            except OSError:
                await client.aclose()
                return
            self.connections += 1
            try:
                async with client, server, trio.open_nursery() as nursery:
                    for source, sink in ((client, server), (server, client)):
                        shaper = LinkShaper(self._shape, random.Random(self.rng.random()))
                        nursery.start_soon(self._direction, source, sink, shaper, scope)
            finally:
                self._scopes.discard(scope)

    async def _direction(
        self,
        source: trio.SocketStream,
        sink: trio.SocketStream,
        shaper: LinkShaper,
        done: trio.CancelScope,
    ) -> None:
        send, receive = trio.open_memory_channel[tuple[float, bytes]](QUEUED_CHUNKS)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer, receive, sink, done)
            try:
                async with send:
                    while data := await source.receive_some(shaper.chunk_limit()):
                        await send.send((shaper.release_at(len(data), trio.current_time()), data))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                done.cancel()

    async def _writer(
        self,
        receive: trio.MemoryReceiveChannel[tuple[float, bytes]],
        sink: trio.SocketStream,
        done: trio.CancelScope,
    ) -> None:
        try:
            async with receive:
                async for release, data in receive:
                    await trio.sleep_until(release)
                    await sink.send_all(data)
                    self.bytes_relayed += len(data)
            # The source closed: so does this side, after everything queued has gone.
            done.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            done.cancel()


def free_port() -> int:
    """A TCP port free on loopback now (for a node that must come back on the same one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
