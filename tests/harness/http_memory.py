"""The API's HTTP/1.1 connection (chat/api/connection.py, `HttpConnection`) over an in-memory
stream pair instead of a socket: what a client writes goes through exactly the code a
socket's bytes go through (h11, the limits, the timeouts, the ASGI app), with no port, so a
fuzz target or a test can open thousands of connections, and time can be trio's mock clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import h11
import trio
import trio.testing

from chat.api.connection import AsgiApp, HttpConnection
from chat.api.limits import DEFAULT_LIMITS, ApiLimits

CLIENT_ADDRESS = ("127.0.0.1", 40000)
SERVER_ADDRESS = ("127.0.0.1", 8787)
READ_BYTES = 64 * 1024
ENDINGS = ("half-close", "wait", "leave")


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
    ending: str = "half-close",
    limits: ApiLimits = DEFAULT_LIMITS,
) -> bytes:
    """Everything the server sends on one connection until it closes it, while the client
    writes each of `writes` in turn (`pause` seconds apart), then, by `ending`:
    "half-close" its side and read on; "wait" (the server's timeouts end the connection);
    or "leave": close the connection at once, reading nothing more (the server finds out
    when it next reads or writes). Returns once the server is done with the connection."""
    if ending not in ENDINGS:
        raise ValueError(f"ending {ending!r} is not one of {ENDINGS}")
    received = bytearray()
    async with memory_connection(app, limits) as client:

        async def read(done: trio.Event) -> None:
            with contextlib.suppress(trio.ClosedResourceError):
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
                if ending == "half-close":
                    await client.send_eof()
            if ending == "leave":
                nursery.cancel_scope.cancel()
            else:
                await closed.wait()
    return bytes(received)


@dataclass
class ParsedResponse:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    complete: bool = True
    """False for the last response only, when the server closed half-way through its body
    (an event stream whose client left)."""


class MalformedResponse(Exception):
    """What the server sent is not a sequence of well-formed HTTP/1.1 responses ending in a
    clean close."""


def parse_responses(raw: bytes, methods: Sequence[str] = ()) -> list[ParsedResponse]:
    """The final responses in `raw` (all a server sent on one connection until it closed it),
    read by h11 as a client reads them; interim 100 Continue responses are left out.
    `methods[i]` is the method of the i-th request (a HEAD response has no body); answers
    past `methods` are taken as answers to a GET."""
    client = h11.Connection(h11.CLIENT)
    client.receive_data(raw)
    client.receive_data(b"")
    responses: list[ParsedResponse] = []
    try:
        while client.trailing_data[0]:
            if client.their_state is not h11.IDLE:
                raise MalformedResponse(
                    f"bytes after a response that closes the connection: {raw[-200:]!r}"
                )
            method = methods[len(responses)] if len(responses) < len(methods) else "GET"
            client.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
            client.send(h11.EndOfMessage())
            responses.append(_one_response(client))
            if not responses[-1].complete:
                break
            if client.our_state is h11.DONE and client.their_state is h11.DONE:
                client.start_next_cycle()
    except h11.ProtocolError as exc:
        detail = f"{exc} after {len(responses)} response(s): {raw[-300:]!r}"
        raise MalformedResponse(detail) from None
    return responses


def _one_response(client: h11.Connection) -> ParsedResponse:
    response: h11.Response | None = None
    body = bytearray()
    while True:
        try:
            event = client.next_event()
        except h11.RemoteProtocolError:
            if response is None:
                raise
            event = h11.NEED_DATA  # the body ends at the close, unfinished
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and response is not None:
            return ParsedResponse(response.status_code, dict(response.headers), bytes(body))
        elif response is not None and (
            event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed)
        ):
            return ParsedResponse(
                response.status_code, dict(response.headers), bytes(body), complete=False
            )
        else:
            raise MalformedResponse(f"a response cut short ({event!r})")
