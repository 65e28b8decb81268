"""A real service node whose light push answers wait at a gate: each incoming light push
stream is held, unread, until the test opens the gate, then served by the node's own light
push server (a real answer: the message is relayed and 200 comes back). Closed, the node is
a service node that takes a push and never answers it, as a stuck or overloaded one does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol

from chat.waku.lightpush.server import LightPushServer
from chat.waku.lightpush.wire import PROTOCOL_V2, PROTOCOL_V3
from chat.waku.service_node import ServiceNode

_Handler = Callable[[INetStream], Awaitable[None]]


class PushGate:
    def __init__(self, server: LightPushServer) -> None:
        self._server = server
        self._open = trio.Event()
        self.waiting = 0
        """Pushes held at the gate now."""
        self.arrived = 0
        """Pushes that reached the gate since it was set up."""

    def hold(self) -> None:
        """From now on, every light push waits for `open()`."""
        host = self._server.host
        host.set_stream_handler(TProtocol(PROTOCOL_V3), self._gated(self._server._handle_v3))
        host.set_stream_handler(TProtocol(PROTOCOL_V2), self._gated(self._server._handle_v2))

    def open(self) -> None:
        """Serve the held pushes and every later one at once."""
        self._open.set()

    def _gated(self, serve: _Handler) -> _Handler:
        async def handle(stream: INetStream) -> None:
            self.arrived += 1
            self.waiting += 1
            try:
                await self._open.wait()
            finally:
                self.waiting -= 1
            await serve(stream)

        return handle


def hold_pushes(service: ServiceNode) -> PushGate:
    """Hold the light pushes `service` gets from now on (it must serve light push)."""
    assert service.lightpush is not None, "the service node does not serve light push"
    gate = PushGate(service.lightpush)
    gate.hold()
    return gate
