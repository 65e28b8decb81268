"""A TCP relay on 127.0.0.1 between a real peer and a server that can stop reading what the
server sends (`stall()`), as a peer does that asks and then stops reading: once the small
socket buffers between them are full, the server's writes to that connection block.

The peer is a real py-libp2p host dialling the relay's port with the server's peer id;
everything it sends still reaches the server, so its requests arrive whole."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import trio

RECEIVE_BUFFER = 4096
"""The relay's receive buffer towards the server: small, so a stall bites at once."""
CHUNK = 65536


class StallProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._flowing = trio.Event()
        self._flowing.set()

    def stall(self) -> None:
        """Stop reading from the server (every connection through the relay)."""
        if self._flowing.is_set():
            self._flowing = trio.Event()

    def resume(self) -> None:
        self._flowing.set()

    async def _to_server(self, client: trio.SocketStream) -> trio.SocketStream:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        await sock.connect(("127.0.0.1", self.target_port))
        return trio.SocketStream(sock)

    async def _relay(self, client: trio.SocketStream) -> None:
        server = await self._to_server(client)
        async with client, server, trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, client, server, False, nursery.cancel_scope)
            nursery.start_soon(self._pump, server, client, True, nursery.cancel_scope)

    async def _pump(
        self,
        source: trio.SocketStream,
        sink: trio.SocketStream,
        from_server: bool,
        done: trio.CancelScope,
    ) -> None:
        try:
            while True:
                if from_server:
                    await self._flowing.wait()
                data = await source.receive_some(CHUNK)
                if not data:
                    break
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        done.cancel()


@asynccontextmanager
async def stall_proxy(target_port: int) -> AsyncIterator[StallProxy]:
    """A relay to 127.0.0.1:`target_port` while the block runs; its own port is `.port`."""
    proxy = StallProxy(target_port)
    async with trio.open_nursery() as nursery:
        serve = partial(trio.serve_tcp, proxy._relay, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        proxy.port = listeners[0].socket.getsockname()[1]
        try:
            yield proxy
        finally:
            nursery.cancel_scope.cancel()
