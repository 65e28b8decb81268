"""A TCP forwarder on 127.0.0.1 that can become a black hole: while `blackholed`, it
accepts connections and never answers nor forwards (a collector behind a dead route); when
opened, new connections reach the target. Tests point the telemetry client at it."""

from __future__ import annotations

from typing import Any

import trio

CHUNK = 65536


class Blackhole:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.blackholed = True
        self.port = 0
        self.swallowed = 0
        """Connections accepted while blackholed."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started()
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            if self.blackholed:
                self.swallowed += 1
                await trio.sleep_forever()
            server = await trio.open_tcp_stream("127.0.0.1", self.target_port)
            async with server, trio.open_nursery() as nursery:
                nursery.start_soon(_pump, client, server)
                await _pump(server, client)
                nursery.cancel_scope.cancel()


async def _pump(source: trio.SocketStream, sink: trio.SocketStream) -> None:
    try:
        while data := await source.receive_some(CHUNK):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
