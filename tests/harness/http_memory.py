"""The API's HTTP/1.1 connection (chat/api/connection.py, `HttpConnection`) over an in-memory
stream pair instead of a socket: what a client writes goes through exactly the code a
socket's bytes go through (h11, the limits, the timeouts, the ASGI app), with no port, so a
fuzz target or a test can open thousands of connections, and time can be trio's mock clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import trio
import trio.testing

from chat.api.connection import AsgiApp, HttpConnection
from chat.api.limits import DEFAULT_LIMITS, ApiLimits

CLIENT_ADDRESS = ("127.0.0.1", 40000)
SERVER_ADDRESS = ("127.0.0.1", 8787)
READ_BYTES = 64 * 1024


def _nothing() -> None:
    pass


@contextlib.asynccontextmanager
async def memory_connection(
    app: AsgiApp, limits: ApiLimits = DEFAULT_LIMITS
) -> AsyncIterator[trio.abc.HalfCloseableStream]:
    """A connection being served; yields the client's end. On exit the client's end is
    closed, and the block returns once the server is done with the connection."""
    client, server = trio.testing.memory_stream_pair()
    connection = HttpConnection(
        server,
        app,
        limits,
        client=CLIENT_ADDRESS,
        server=SERVER_ADDRESS,
        waiting=_nothing,
        busy=_nothing,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.serve)
        try:
            yield client
        finally:
            await client.aclose()


async def exchange(
    app: AsgiApp,
    writes: Sequence[bytes],
    *,
    pause: float = 0.0,
    half_close: bool = True,
    limits: ApiLimits = DEFAULT_LIMITS,
) -> bytes:
    """Everything the server sends on one connection until it closes it, while the client
    writes each of `writes` in turn (`pause` seconds apart), then half-closes its side if
    `half_close` (else it waits, and the server's timeouts end the connection)."""
    received = bytearray()
    async with memory_connection(app, limits) as client:

        async def read(done: trio.Event) -> None:
            while data := await client.receive_some(READ_BYTES):
                received.extend(data)
            done.set()

        closed = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read, closed)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                for index, data in enumerate(writes):
                    if index and pause:
                        await trio.sleep(pause)
                    await client.send_all(data)
                if half_close:
                    await client.send_eof()
            await closed.wait()
    return bytes(received)
