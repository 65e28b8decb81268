"""Clients that misbehave on purpose, for the attack tests of the REST API and the metrics
endpoint: raw bytes over TCP, connections held open, bytes trickled, and HTTP/2 spoken the
way the issue's attacker spoke it (the `h2` package, a real HTTP/2 implementation)."""

from __future__ import annotations

from collections.abc import Sequence

import h2.config
import h2.connection
import trio

ANSWERED_PAUSE = 0.5


async def read_until_closed(stream: trio.SocketStream, limit: float = 10.0) -> bytes:
    """Everything the server sends until it closes (or `limit` seconds pass)."""
    received = bytearray()
    with trio.move_on_after(limit):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not chunk:
                break
            received += chunk
    return bytes(received)


async def exchange(host: str, port: int, request: bytes, limit: float = 10.0) -> bytes:
    """Send raw request bytes on a new connection; everything until the server closes."""
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(request)
        return await read_until_closed(stream, limit)


async def hold_connections(
    host: str, port: int, count: int, first_bytes: bytes = b""
) -> list[trio.SocketStream]:
    """`count` open connections that sent `first_bytes` (maybe nothing) and then nothing."""
    streams = []
    for _ in range(count):
        stream = await trio.open_tcp_stream(host, port)
        if first_bytes:
            await stream.send_all(first_bytes)
        streams.append(stream)
    return streams


async def still_open(stream: trio.SocketStream) -> bool:
    """Whether the server keeps this connection open (it sent nothing, nor closed it)."""
    with trio.move_on_after(0.01):
        try:
            await stream.receive_some(1)
        except trio.BrokenResourceError:
            return False
        return False  # bytes or EOF: the server answered or closed
    return True


def status_of(response: bytes) -> int:
    """The status code of a raw HTTP/1.x response."""
    line = response.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1."), response[:100]
    return int(line.split()[1])


async def h2_body_after_answer(
    host: str,
    port: int,
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]] = (),
    limit: float = 5.0,
) -> bytes:
    """The issue's attack: an HTTP/2 connection (prior knowledge, no TLS), a request whose
    HEADERS frame leaves the stream open, and a DATA frame sent after the server answered
    it. Returns every byte the server sent."""
    stream = await trio.open_tcp_stream(host, port)
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    request = [(":method", method), (":path", path), (":scheme", "http"), (":authority", host)]
    connection.send_headers(1, [*request, *headers])
    received = bytearray()
    async with stream:
        await stream.send_all(connection.data_to_send())
        with trio.move_on_after(limit):
            received += await stream.receive_some(65536)  # the answer, before our body
        # Give the server time to finish with the stream it answered: the DATA frame must
        # find it closed (that is what broke Hypercorn's HTTP/2 code).
        await trio.sleep(ANSWERED_PAUSE)
        connection.send_data(1, b"x" * 10, end_stream=True)
        try:
            await stream.send_all(connection.data_to_send())
        except trio.BrokenResourceError:
            pass  # it closed already: fine, the data was what mattered
        received += await read_until_closed(stream, limit)
    return bytes(received)
