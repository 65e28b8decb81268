"""One connection of the API server: HTTP/1.1 framed by h11 (sans-IO), bytes moved here, and
the ASGI app (chat/api/app.py) run for each request, within chat/api/limits.py.

Each request goes through three phases, each bounded:
- idle: its first byte must come within `idle_timeout` (else the connection is closed
  quietly; at once when the server stops);
- reading: its head and body must be in within `request_read_timeout` of that first byte
  (else 408), the head at most `max_header_bytes` (else 431);
- answering: the app runs; each write may wait `write_timeout` for a client that does not
  read (else the connection is dropped and the app's work for it cancelled).

Only HTTP/1.0 and 1.1 are spoken. An HTTP/2 connection preface is answered 505 and an
`Upgrade: h2c` header is ignored: HTTP/2 is not offered (docs/operator-guide.md says why).
Nothing a client sends ends more than its own connection; the server logs the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes

import h11
import trio

from chat.api.limits import ApiLimits
from chat.api.protocol import JSON_TYPE, json_bytes

log = logging.getLogger(__name__)

Scope = Mapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RECEIVE_BYTES = 64 * 1024
LINGER_TIMEOUT = 2.0
LINGER_BYTES = 64 * 1024
PIPELINE_BYTES = 128 * 1024
"""Bytes of the client's next requests buffered while one is answered; beyond that we stop
reading (TCP then slows the client down)."""
HTTP_VERSIONS = (b"1.0", b"1.1")

_DISCONNECT: Message = {"type": "http.disconnect"}
_SENTENCES = {
    400: "the request is not valid HTTP/1.1.",
    408: "the request took too long to arrive; send the head and the body at once.",
    500: "the server failed to answer; see chinwag's log.",
    505: "this server speaks HTTP/1.1 only (HTTP/2 is not offered).",
}


def error_bytes(status: int, sentence: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """A complete `Connection: close` response with `{"error": sentence}`, for answers given
    outside a normal request cycle (the connection is closed after it)."""
    body = json_bytes({"error": sentence})
    lines = [
        f"HTTP/1.1 {status} ".encode() + _reason(status),
        b"content-type: " + JSON_TYPE,
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
        b"cache-control: no-store",
        b"date: " + http_date(),
        *(name + b": " + value for name, value in headers),
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def http_date() -> bytes:
    return formatdate(usegmt=True).encode("ascii")


class _Gone(Exception):
    """The client went away, or stopped reading what we write."""


class _TimedOut(Exception):
    """The request did not arrive within its deadline."""


@dataclass
class _Exchange:
    """One request and its response, as the app and the connection see them."""

    method: str
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    body_done: bool = False
    started: bool = False
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    head_sent: bool = False
    complete: bool = False
    gone: bool = False
    failure: int | None = None
    """A status to answer with if the app did not answer (408 or 400 while reading)."""


class HttpConnection:
    """Serves the requests of one accepted connection, then closes it. Any half-closeable
    stream will do: the server passes sockets, tests and fuzz targets in-memory streams."""

    def __init__(
        self,
        stream: trio.abc.HalfCloseableStream,
        app: AsgiApp,
        limits: ApiLimits,
        *,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        waiting: Callable[[], None],
        busy: Callable[[], None],
    ) -> None:
        self._stream = stream
        self._app = app
        self._limits = limits
        self._client = client
        self._server = server
        self._waiting = waiting
        self._busy = busy
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self._deadline = float("inf")
        self._idle_scope: trio.CancelScope | None = None
        self._stopping = False
        self._linger = False

    def stop(self) -> None:
        """The server stops: close now if idle, else after the response in progress."""
        self._stopping = True
        if self._idle_scope is not None:
            self._idle_scope.cancel()

    async def serve(self) -> None:
        try:
            while not self._stopping:
                request = await self._next_request()
                if request is None or not await self._answer(request):
                    return
                self._h11.start_next_cycle()
                self._waiting()
        except _Gone:
            self._linger = False
        finally:
            await self._close()

    # -- reading ---------------------------------------------------------------------------

    async def _next_request(self) -> h11.Request | None:
        """The next request's head, or None when the connection should close (idle, the
        client left, or a refusal was sent)."""
        if not self._h11.trailing_data[0]:
            with trio.move_on_after(self._limits.idle_timeout) as idle:
                self._idle_scope = idle
                if self._stopping:
                    idle.cancel()
                data = await self._receive()
            self._idle_scope = None
            if idle.cancelled_caught:
                return None
            self._h11.receive_data(data)
        self._deadline = trio.current_time() + self._limits.request_read_timeout
        try:
            event = await self._read_event()
        except _TimedOut:
            await self._refuse(408)
            return None
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:
                await self._refuse_large_head()
            else:
                await self._refuse(400)
            return None
        if not isinstance(event, h11.Request):
            return None  # ConnectionClosed: the client is done
        if _head_size(event) > self._limits.max_header_bytes:
            # h11 bounds only a head still incomplete; one that came whole in a read is here.
            await self._refuse_large_head()
            return None
        if event.http_version not in HTTP_VERSIONS:
            await self._refuse(505)
            return None
        if _framed_twice(event):
            # A proxy in front may read the other framing: what we took as the rest of the
            # body, or as the next request, could be its next request (smuggling).
            await self._refuse(400, "the request has both Content-Length and Transfer-Encoding.")
            return None
        return event

    async def _read_event(self) -> object:
        """The next h11 event of the request, reading as needed until its deadline."""
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            with trio.move_on_at(self._deadline) as reading:
                data = await self._receive()
            if reading.cancelled_caught:
                raise _TimedOut()
            self._h11.receive_data(data)

    async def _receive(self) -> bytes:
        try:
            return await self._stream.receive_some(RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise _Gone() from None

    def _settle_request(self) -> None:
        """Take the rest of the request from what is already buffered (no waiting): a
        response may start before the app read the body (a 401, a 413)."""
        try:
            while self._h11.their_state is h11.SEND_BODY:
                if self._h11.next_event() is h11.NEED_DATA:
                    return
        except h11.RemoteProtocolError:
            return

    # -- answering -------------------------------------------------------------------------

    async def _answer(self, request: h11.Request) -> bool:
        """Run the app for `request`; whether the connection can carry another request."""
        method = request.method.decode("ascii")  # case-sensitive, as h11 reads it
        path, _, query = request.target.partition(b"?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.http_version.decode("ascii"),
            "method": method,
            "scheme": "http",
            "path": unquote_to_bytes(path).decode("utf-8", "replace"),
            "raw_path": path,
            "query_string": query,
            "root_path": "",
            "headers": [(bytes(name), bytes(value)) for name, value in request.headers],
            "client": self._client,
            "server": self._server,
        }
        exchange = _Exchange(method)
        with exchange.scope:
            try:
                await self._app(
                    scope, partial(self._app_receive, exchange), partial(self._app_send, exchange)
                )
            except Exception:
                log.exception("the API failed to answer %s %s", method, path[:200])
        if exchange.gone:
            return False
        if not exchange.started:
            await self._refuse(exchange.failure or 500)
            return False
        if not exchange.complete:
            return False  # the body stopped half-way: only closing tells the client
        self._settle_request()
        if (
            self._stopping
            or self._h11.our_state is not h11.DONE
            or self._h11.their_state is not h11.DONE
        ):
            self._linger = True
            return False
        return True

    async def _app_receive(self, exchange: _Exchange) -> Message:
        if exchange.gone or exchange.complete or exchange.failure:
            return _DISCONNECT
        if exchange.body_done:
            await self._until_client_leaves(exchange)
            return _DISCONNECT
        try:
            if self._h11.they_are_waiting_for_100_continue:
                continue_ = h11.InformationalResponse(
                    status_code=100, headers=[], reason=b"Continue"
                )
                await self._write(self._h11.send(continue_))
            event = await self._read_event()
        except _TimedOut:
            exchange.failure = 408
            return _DISCONNECT
        except h11.RemoteProtocolError:
            exchange.failure = 400
            return _DISCONNECT
        except _Gone:
            exchange.gone = True
            return _DISCONNECT
        if isinstance(event, h11.Data):
            return {"type": "http.request", "body": bytes(event.data), "more_body": True}
        if isinstance(event, h11.EndOfMessage):
            exchange.body_done = True
            self._busy()
            return {"type": "http.request", "body": b"", "more_body": False}
        exchange.gone = True  # ConnectionClosed half-way through the body
        return _DISCONNECT

    async def _until_client_leaves(self, exchange: _Exchange) -> None:
        """Return when the client closes its side (what an event stream waits for). Bytes
        it sends meanwhile are its next requests: kept (bounded) for after this one."""
        buffered = 0
        while buffered <= PIPELINE_BYTES:
            try:
                data = await self._stream.receive_some(RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                exchange.gone = True
                return
            buffered += len(data)
            self._h11.receive_data(data)
        await trio.sleep_forever()  # the write deadline still ends a client that is gone

    async def _app_send(self, exchange: _Exchange, message: Message) -> None:
        if exchange.gone:
            await _abandon(exchange)
        kind = message["type"]
        if kind == "http.response.start":
            if exchange.started:
                raise RuntimeError("the app started a second response")
            exchange.started = True
            exchange.status = int(message["status"])
            exchange.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
            self._busy()
            return
        if kind != "http.response.body" or not exchange.started or exchange.complete:
            raise RuntimeError(f"the app sent {kind} out of order")
        data = bytearray()
        if not exchange.head_sent:
            data += self._h11.send(self._response_head(exchange))
            exchange.head_sent = True
        body = message.get("body", b"")
        if body and exchange.method != "HEAD":
            data += self._h11.send(h11.Data(data=body))
        if not message.get("more_body", False):
            data += self._h11.send(h11.EndOfMessage())
            exchange.complete = True
        try:
            await self._write(bytes(data))
        except _Gone:
            exchange.gone = True
            await _abandon(exchange)

    def _response_head(self, exchange: _Exchange) -> h11.Response:
        headers = [*exchange.headers, (b"date", http_date())]
        self._settle_request()
        unread = self._h11.their_state in (h11.SEND_BODY, h11.ERROR)
        if self._stopping or unread:
            headers.append((b"connection", b"close"))
        return h11.Response(
            status_code=exchange.status, headers=headers, reason=_reason(exchange.status)
        )

    # -- writing and closing ---------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        with trio.move_on_after(self._limits.write_timeout) as writing:
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise _Gone() from None
        if writing.cancelled_caught:
            raise _Gone()

    async def _refuse(self, status: int, sentence: str | None = None) -> None:
        """Answer `status` outside the normal cycle; the connection closes after it."""
        self._busy()
        self._linger = True
        try:
            await self._write(error_bytes(status, sentence or _SENTENCES[status]))
        except _Gone:
            self._linger = False

    async def _refuse_large_head(self) -> None:
        await self._refuse(431, f"the request head is over {self._limits.max_header_bytes} bytes.")

    async def _close(self) -> None:
        try:
            if self._linger:
                self._waiting()  # draining costs nothing of ours: may be shed
                await linger(self._stream)
        finally:
            await self._stream.aclose()


def _framed_twice(request: h11.Request) -> bool:
    names = {bytes(name) for name, _ in request.headers}
    return b"content-length" in names and b"transfer-encoding" in names


def _head_size(request: h11.Request) -> int:
    """About the bytes of a request head (each header line as `name: value` + CRLF)."""
    line = len(request.method) + len(request.target) + len(request.http_version) + 8
    return line + sum(len(name) + len(value) + 4 for name, value in request.headers)


async def _abandon(exchange: _Exchange) -> None:
    """End the app's work for a client that is gone: cancel it at once."""
    exchange.scope.cancel()
    await trio.lowlevel.checkpoint()


async def linger(stream: trio.abc.HalfCloseableStream) -> None:
    """Half-close, then read (bounded) what the client still sends until it closes: closing
    with unread bytes would reset the connection and could destroy our answer in flight."""
    with trio.move_on_after(LINGER_TIMEOUT):
        try:
            await stream.send_eof()
            drained = 0
            while drained < LINGER_BYTES:
                chunk = await stream.receive_some(LINGER_BYTES)
                if not chunk:
                    return
                drained += len(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return


__all__ = ["AsgiApp", "HttpConnection", "error_bytes", "http_date", "linger"]
