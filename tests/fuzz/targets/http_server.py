"""The REST API's own HTTP/1.1 server, one connection (chat/api/connection.py): request heads,
bodies (sized, chunked, cut short), pipelined requests, `Expect: 100-continue`, HTTP/1.0 and
HTTP/2 prefaces, heads over the limit, event streams, and clients that trickle bytes, stall,
half-close or vanish.

Each input is one connection, served by the real `HttpConnection` over an in-memory stream
(tests/harness/http_memory.py) on trio's mock clock, so the server's timeouts fire at once.
The first byte says how the client behaves (`Client`: the size of its writes, the pause
between them, how often the rest is repeated, and how it ends); the rest is what it writes.
The app behind the connection is a small one (`EchoApp`): by path it reads the body and
answers its length, answers without reading the body, streams until the client leaves, or
fails.

Contract: everything the server sends is a sequence of well-formed HTTP/1.1 responses ending
in a clean close (h11, as a client, reads it), only an event stream cut short by its
client; each app call gets one answer, and at most one more answer is a refusal (400, 408,
431, 505); a 500 only when the app failed; nothing else logged as an error; nothing escapes
the connection; it closes within the client's own pace, the app's streams and the server's
timeouts (else it hangs)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import trio
import trio.testing
from harness.http_memory import MalformedResponse, exchange, parse_responses

from chat.api.limits import ApiLimits
from fuzz.contract import Target, check

LIMITS = ApiLimits(max_header_bytes=1024)
"""A small head limit, so that inputs reach the 431 paths (a head cut while incomplete, and
one that came whole in a read)."""
WRITE_SIZES = (None, 1, 7, 61)
PAUSES = (0.0, 0.5, 4.0, 11.0)
"""Seconds between writes: none, a slow client, one past the idle timeout (5 s) and one past
the request read timeout (10 s)."""
REPEATS = (1, 2, 8, 32)
ENDINGS = ("wait", "half-close", "leave", "leave")
"""Bits 0 and 7: the client waits for the server to close, half-closes, or leaves at once."""
MAX_WRITES = 512
SLACK = 60.0
"""Virtual seconds the server may hold a connection beyond the client's own pace and the
app's streams (its idle, read and linger timeouts are all shorter): longer is a hang."""
REFUSALS = frozenset({400, 408, 431, 505})
STREAM_TYPE = b"text/event-stream"
STREAM_SECONDS = 30.0
HANG = 1e6


@dataclass
class EchoApp:
    """The app behind the connection: `/v1/echo...` reads the body and answers its length;
    `/fail...` raises; `/events...` streams until the client leaves (as /v1/events does) or
    `STREAM_SECONDS` pass; anything else answers at once, the body unread."""

    methods: list[str] = field(default_factory=list)
    failures: int = 0
    streams: int = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.methods.append(scope["method"])
        path: bytes = scope["raw_path"]
        if path.startswith(b"/fail"):
            self.failures += 1
            raise RuntimeError("the app failed")
        if path.startswith((b"/v1/echo", b"/events")):
            size = await _body_size(receive)
            if size is None:
                return  # the connection answers for the request it could not read
            if path.startswith(b"/events"):
                self.streams += 1
                await _stream(receive, send)
                return
            body = b'{"bytes": %d}' % size
        else:
            body = b'{"ok": true}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _body_size(receive: Any) -> int | None:
    """The request body's length, read whole; None if the connection could not read it."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return size


async def _stream(receive: Any, send: Any) -> None:
    """As ApiApp streams /v1/events: the body read, a first chunk, then until the client
    leaves (here also at most STREAM_SECONDS, then the stream ends properly)."""
    headers = [(b"content-type", STREAM_TYPE)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b": hello\n\n", "more_body": True})
    with trio.move_on_after(STREAM_SECONDS):
        while (await receive())["type"] != "http.disconnect":
            pass
        return  # the client left: the stream ends unfinished
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@cache
def _logged() -> _Failures:
    """What the server logs as errors, counted (in the fuzzing process only)."""
    failures = _Failures()
    logging.getLogger("chat.api").addHandler(failures)
    return failures


@dataclass(frozen=True)
class Client:
    """How the client behaves, from an input's first byte."""

    ending: str
    write_size: int | None
    pause: float
    repeat: int

    @classmethod
    def from_byte(cls, flags: int) -> Client:
        return cls(
            ending=ENDINGS[(flags & 1) | (flags >> 6 & 2)],
            write_size=WRITE_SIZES[(flags >> 1) & 3],
            pause=PAUSES[(flags >> 3) & 3],
            repeat=REPEATS[(flags >> 5) & 3],
        )

    def writes(self, payload: bytes) -> list[bytes]:
        data = payload * self.repeat
        size = self.write_size or len(data) or 1
        size = max(size, -(-len(data) // MAX_WRITES))
        return [data[i : i + size] for i in range(0, len(data), size)]


def fuzz_connection(data: bytes) -> None:
    if not data:
        return
    client = Client.from_byte(data[0])
    writes = client.writes(data[1:])
    app = EchoApp()
    logged_before = _logged().count

    async def main() -> tuple[bytes, float]:
        with trio.move_on_after(HANG):
            raw = await exchange(
                app, writes, pause=client.pause, ending=client.ending, limits=LIMITS
            )
            return raw, trio.current_time()
        return b"", HANG

    raw, took = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    allowed = len(writes) * client.pause + app.streams * STREAM_SECONDS + SLACK
    check(took <= allowed, f"the connection was open for {took} s (allowed: {allowed} s)")
    check(_logged().count - logged_before == app.failures, "the connection logged an error")
    if client.ending == "leave":
        return  # what the server managed to send before it noticed is cut anywhere
    try:
        responses = parse_responses(raw, app.methods)
    except MalformedResponse as exc:
        raise AssertionError(f"not well-formed HTTP: {exc}") from None
    for response in responses[:-1]:
        check(response.complete, "a response cut short before another")
    if responses and not responses[-1].complete:
        cut = responses[-1]
        check(cut.headers.get(b"content-type") == STREAM_TYPE, f"cut short: {cut}")
    statuses = [r.status for r in responses]
    calls = len(app.methods)
    check(calls <= len(responses) <= calls + 1, f"{calls} app calls, answers {statuses}")
    for status in statuses[:calls]:
        check(status in (200, 500) or status in REFUSALS, f"status {status} in {statuses}")
    for status in statuses[calls:]:
        check(status in REFUSALS, f"refusal {status} in {statuses}")
    check(statuses.count(500) <= app.failures, f"500 without an app failure: {statuses}")


def _client(
    ending: str = "half-close", size: int | None = None, pause: int = 0, repeat: int = 0
) -> bytes:
    flags = ENDINGS.index(ending)
    flags = (flags & 1) | (flags & 2) << 6 | WRITE_SIZES.index(size) << 1 | pause << 3
    return bytes([flags | repeat << 5])


def _seeds() -> Iterable[bytes]:
    get = b"GET /v1/items?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    post = b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    chunked = (
        b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: t\r\n\r\n"
    )
    early = b"PUT /v1/items HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort"
    yield _client() + get
    yield _client() + post
    yield _client() + chunked
    yield _client() + get + post + chunked + b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"  # pipelined
    yield _client("wait") + get  # kept alive until the idle timeout
    yield _client(size=7, pause=1) + post  # a slow client within the deadline
    yield _client(size=7, pause=3) + get  # one past the request read timeout (408)
    yield _client() + early
    yield _client() + b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n" + get
    yield _client() + (
        b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"
    )
    yield _client() + b"GET / HTTP/1.0\r\n\r\n"
    yield _client() + b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    yield _client() + b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 1100 + b"\r\n\r\n"
    yield _client(repeat=3) + post  # 32 pipelined requests
    padded = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 900 + b"\r\n\r\n"
    # A stream, and behind it more pipelined bytes than the connection keeps meanwhile.
    yield _client(repeat=3) + b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n" + padded * 7
    yield _client("leave") + get + post  # the client is gone before the answers
    yield _client("leave", size=7, pause=1) + b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n"
    yield _client() + b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
    yield _client() + b"\r\n\r\nGET\x00 / HTTP/1.1\r\n\r\n"
    yield _client() + b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n" + get  # the client leaves
    yield _client("wait") + b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n" + get


TARGETS = (
    Target(
        name="http_connection",
        decoder="chat.api.connection.HttpConnection (h11 framing, the request limits and "
        "timeouts, pipelining, 100-continue, refusals), over an in-memory stream",
        contract="well-formed HTTP/1.1 responses then a clean close (only an event stream cut "
        "short by its client); one answer per request the app saw, at most one refusal "
        "(400/408/431/505) besides; 500 only when the app failed; no other error logged; "
        "nothing escapes; never open past the client's pace, the streams and the timeouts",
        fuzz=fuzz_connection,
        seeds=_seeds,
        max_len=8192,
        tokens=(
            b"HTTP/1.1",
            b"HTTP/1.0",
            b"\r\n\r\n",
            b"Host: x\r\n",
            b"Content-Length: ",
            b"Transfer-Encoding: chunked\r\n",
            b"Expect: 100-continue\r\n",
            b"Connection: close\r\n",
            b"Connection: keep-alive\r\n",
            b"Upgrade: h2c\r\n",
            b"0\r\n\r\n",
            b"/v1/echo",
            b"/fail",
            b"/events",
            b"HEAD ",
            b"POST ",
        ),
        weight=0.5,
    ),
)
