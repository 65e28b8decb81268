"""The API server under the attacks of issue 13, over real sockets on 127.0.0.1: HTTP/2 spoken
to it, requests trickled a byte a second, connections held by the hundred, and a server that
fails under its caller. Slow clients are timed in virtual time (trio's autojump clock): a
timeout of 10 s costs no real time, and a request that must not wait for any timeout is given
less virtual time than the shortest one."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import trio
from harness.attack import (
    exchange,
    h2_body_after_answer,
    hold_connections,
    read_until_closed,
    status_of,
    still_open,
)
from harness.waiting import wait_until

from chat.api.app import ApiApp
from chat.api.limits import MAX_CONNECTIONS_PER_SOURCE, REQUEST_READ_TIMEOUT, ApiLimits
from chat.api.openapi import document_bytes
from chat.api.protocol import Request, Response, SendChunk, StreamResponse, json_response
from chat.api.routing import Route, Router
from chat.api.server import ApiListener, ApiServer, bind_api, serve_api
from chat.api.sse import comment_frame
from chat.waku.host import TaskStatusLike

TOKEN = "t" * 43
AUTH = f"Authorization: Bearer {TOKEN}\r\n".encode()
PROMPTLY = 1.0
"""Virtual seconds a request may take when it must not wait for any timeout (the shortest,
the idle timeout, is 5 s)."""


async def _echo(request: Request) -> Response:
    return json_response({"body": request.json_object(allowed=frozenset({"text"}))}, 202)


async def _stream(request: Request) -> StreamResponse:
    async def produce(send: SendChunk) -> None:
        await send(comment_frame("connected"))
        await trio.sleep_forever()

    return StreamResponse(produce, b"text/event-stream")


@dataclass
class Served:
    app: ApiApp
    listener: ApiListener
    server: ApiServer
    host: str
    port: int

    @property
    def url(self) -> str:
        return self.listener.url


@pytest.fixture
def limits() -> ApiLimits:
    return ApiLimits()


@pytest.fixture
async def served(limits: ApiLimits) -> AsyncIterator[Served]:
    routes = [Route("POST", "/v1/echo", _echo), Route("GET", "/v1/stream", _stream)]
    app = ApiApp(Router(routes), TOKEN, document_bytes())
    listener = bind_api("127.0.0.1", 0)
    server = ApiServer(app, listener, limits)
    host, port = listener.socket.getsockname()[:2]
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        yield Served(app, listener, server, host, port)
        app.close()
    listener.close()


async def _works(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        response = await client.post(
            "/v1/echo", json={"text": "hi"}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 202, response.text


# -- HTTP/2 (issue item 1) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/echo"), ("GET", "/openapi.json")],
    ids=["post-without-token", "get-openapi"],
)
async def test_http2_with_data_after_the_answer_is_refused_and_the_server_carries_on(
    served: Served, method: str, path: str
) -> None:
    with trio.fail_after(20):
        answer = await h2_body_after_answer(served.host, served.port, method, path)
        # HTTP/2 is not offered: the preface is answered in HTTP/1.1, then the connection ends.
        assert status_of(answer) == 505
        assert b"HTTP/1.1 only" in answer
        await _works(served)


async def test_an_h2c_upgrade_is_not_offered(served: Served) -> None:
    upgrade = (
        b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
    )
    with trio.fail_after(20):
        stream = await trio.open_tcp_stream(served.host, served.port)
        async with stream:
            await stream.send_all(upgrade)
            answer = await stream.receive_some(65536)
            # An attacker that assumes the switch goes on in HTTP/2 regardless.
            await stream.send_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00" * 9)
            rest = await read_until_closed(stream)
        await _works(served)
    assert status_of(answer) == 200  # answered in HTTP/1.1: no 101 Switching Protocols
    assert b"upgrade" not in answer.split(b"\r\n\r\n")[0].lower()
    assert status_of(rest) == 505


# -- slow requests (issue item 8) ----------------------------------------------------------


async def test_a_body_trickled_a_byte_a_second_is_timed_out(
    served: Served, autojump_clock: trio.abc.Clock
) -> None:
    head = b"POST /v1/echo HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Content-Length: 100\r\n\r\n"
    stream = await trio.open_tcp_stream(served.host, served.port)
    async with stream:
        await stream.send_all(head)
        started = trio.current_time()
        answer = b""
        with trio.fail_after(10 * REQUEST_READ_TIMEOUT):
            while not answer:
                with trio.move_on_after(1.0):
                    answer = await stream.receive_some(65536)
                if not answer:
                    await stream.send_all(b" ")
            answer += await read_until_closed(stream)
    assert status_of(answer) == 408
    assert b"took too long" in answer
    assert trio.current_time() - started <= REQUEST_READ_TIMEOUT + 1


async def test_a_head_trickled_a_byte_a_second_is_timed_out(
    served: Served, autojump_clock: trio.abc.Clock
) -> None:
    head = b"POST /v1/echo HTTP/1.1\r\nHost: x\r\n" + AUTH + b"X-Slow: " + b"a" * 1000
    stream = await trio.open_tcp_stream(served.host, served.port)
    async with stream:
        started = trio.current_time()
        answer = b""
        with trio.fail_after(10 * REQUEST_READ_TIMEOUT):
            for byte in head:
                await stream.send_all(bytes([byte]))
                with trio.move_on_after(1.0):
                    answer = await stream.receive_some(65536)
                if answer:
                    break
            answer += await read_until_closed(stream)
    assert status_of(answer) == 408
    assert trio.current_time() - started <= REQUEST_READ_TIMEOUT + 1


# -- held connections (issue item 8) -------------------------------------------------------


async def test_a_hundred_held_connections_cannot_lock_a_client_out(
    served: Served, autojump_clock: trio.abc.Clock
) -> None:
    idle = await hold_connections(served.host, served.port, 50)
    slow = await hold_connections(served.host, served.port, 50, b"POST /v1/echo HTTP/1.1\r\n")
    with trio.fail_after(PROMPTLY):
        await _works(served)
    # The oldest waiting connections were closed to make room: one address holds at most
    # its share, and the newest of what it held are the ones still open.
    assert served.server.admission.open_from("127.0.0.1") <= MAX_CONNECTIONS_PER_SOURCE
    open_ones = [await still_open(stream) for stream in idle + slow]
    assert not any(open_ones[: 100 - MAX_CONNECTIONS_PER_SOURCE])
    assert served.server.admission.shed >= 100 - MAX_CONNECTIONS_PER_SOURCE
    for stream in idle + slow:
        await stream.aclose()


@pytest.mark.parametrize("limits", [ApiLimits(max_connections=4, max_connections_per_source=2)])
async def test_busy_connections_beyond_the_limit_are_refused_with_a_sentence(
    served: Served,
) -> None:
    request = b"GET /v1/stream HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n"
    with trio.fail_after(20):
        streams = await hold_connections(served.host, served.port, 2, request)
        for stream in streams:
            assert status_of(await stream.receive_some(65536)) == 200  # streaming: busy
        refused = await exchange(served.host, served.port, request)
        assert status_of(refused) == 503
        assert b"retry-after: 1" in refused.lower()
        assert b"too many connections from your address are busy" in refused
        assert served.server.admission.refused == 1
        await streams[0].aclose()

        async def one_left() -> bool:
            return served.server.admission.open_from("127.0.0.1") == 1

        await wait_until(one_left)
        await _works(served)
        await streams[1].aclose()


# -- supervision (issue item 1) ------------------------------------------------------------


async def test_a_failing_server_is_logged_and_restarted_and_its_caller_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = ApiApp(Router([Route("POST", "/v1/echo", _echo)]), TOKEN, document_bytes())
    listener = bind_api("127.0.0.1", 0)
    served = Served(app, listener, ApiServer(app, listener, ApiLimits()), "", 0)
    beside = trio.Event()  # stands for the messenger, in the same nursery as the API

    async def messenger(task_status: TaskStatusLike) -> None:
        task_status.started()
        await app.wait_closed()
        beside.set()

    with caplog.at_level(logging.ERROR, logger="chat.api.server"), trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(messenger)
            await nursery.start(serve_api, app, listener)
            await _works(served)
            # The listening socket fails under the server: accept() now raises EINVAL.
            listener.socket.shutdown(socket.SHUT_RDWR)

            async def restarted() -> bool:  # on the same port, after a short pause
                try:
                    await _works(served)
                except httpx.ConnectError:
                    return False
                return True

            await wait_until(restarted)
            assert "the API server failed; it restarts in 0.1 s (restart 1)" in caplog.text
            assert not beside.is_set()
            app.close()
    assert beside.is_set()


class _BrokenApp:
    """An ASGI app with bugs: raises on one path, breaks the protocol on another."""

    def __init__(self) -> None:
        self._closing = trio.Event()
        self.closed = False

    async def wait_closed(self) -> None:
        await self._closing.wait()

    def close(self) -> None:
        self.closed = True
        self._closing.set()

    async def __call__(self, scope: dict[str, object], receive: object, send: object) -> None:
        assert callable(send)
        if scope["path"] == "/raise":
            raise RuntimeError("a bug in the app")
        if scope["path"] == "/out-of-order":
            await send({"type": "http.response.body", "body": b"no head"})
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_a_failing_request_is_a_500_and_the_server_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _BrokenApp()
    listener = bind_api("127.0.0.1", 0)
    host, port = listener.socket.getsockname()[:2]
    with caplog.at_level(logging.ERROR), trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_api, app, listener)
            for path in (b"/raise", b"/out-of-order"):
                answer = await exchange(
                    host, port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                )
                assert status_of(answer) == 500
            fine = b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            assert status_of(await exchange(host, port, fine)) == 204
            app.close()
    assert "a bug in the app" in caplog.text and "out of order" in caplog.text


# -- plain HTTP/1.1 still works ------------------------------------------------------------


async def test_pipelined_requests_http10_and_expect_continue(served: Served) -> None:
    echo = b"POST /v1/echo HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Content-Length: 2\r\n\r\n{}"
    with trio.fail_after(20):
        stream = await trio.open_tcp_stream(served.host, served.port)
        async with stream:
            await stream.send_all(echo + echo.replace(b"Host: x", b"Host: x\r\nConnection: close"))
            both = await read_until_closed(stream)
        assert both.count(b"HTTP/1.1 202 Accepted") == 2

        old = b"POST /v1/echo HTTP/1.0\r\n" + AUTH + b"Content-Length: 2\r\n\r\n{}"
        assert status_of(await exchange(served.host, served.port, old)) == 202

        stream = await trio.open_tcp_stream(served.host, served.port)
        async with stream:
            head = echo.replace(b"\r\n\r\n{}", b"\r\nExpect: 100-continue\r\n\r\n")
            await stream.send_all(head)
            assert status_of(await stream.receive_some(65536)) == 100
            await stream.send_all(b"{}")
            assert status_of(await stream.receive_some(65536)) == 202


async def test_oversized_and_malformed_heads_are_refused(served: Served) -> None:
    big = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    with trio.fail_after(20):
        assert status_of(await exchange(served.host, served.port, big)) == 431  # in one piece
        stream = await trio.open_tcp_stream(served.host, served.port)
        async with stream:  # and in pieces
            for start in range(0, len(big), 4096):
                try:
                    await stream.send_all(big[start : start + 4096])
                except trio.BrokenResourceError:
                    break
            assert status_of(await read_until_closed(stream)) == 431
        assert status_of(await exchange(served.host, served.port, b"HELLO\r\n\r\n")) == 400
        head = b"HEAD /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        answer = await exchange(served.host, served.port, head)
        assert status_of(answer) == 405 and answer.endswith(b"\r\n\r\n")  # no body


async def test_a_request_framed_both_by_length_and_by_chunks_is_refused(served: Served) -> None:
    # Content-Length and Transfer-Encoding together: a proxy in front (a TLS proxy, as the
    # guide advises) and this server could each take a different end of the body, and the
    # rest as a request of its own. RFC 9112 §6.3: refuse, or close after answering.
    smuggled = b"POST /v1/echo HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Content-Length: 2\r\n\r\n{}"
    request = (
        b"POST /v1/echo HTTP/1.1\r\nHost: x\r\n"
        + AUTH
        + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        + smuggled
    )
    with trio.fail_after(20):
        answer = await exchange(served.host, served.port, request)
        assert status_of(answer) == 400
        assert answer.count(b"HTTP/1.1 ") == 1  # nothing after it was taken as a request
        await _works(served)


@pytest.mark.parametrize("limits", [ApiLimits(max_connections=2, max_connections_per_source=2)])
async def test_connections_answered_and_left_open_by_their_client_make_room(
    served: Served, autojump_clock: trio.abc.Clock
) -> None:
    # After its last answer a connection is drained until its client closes (at most
    # LINGER_TIMEOUT): it holds nothing of ours then, so it waits and can be shed. Counted
    # busy, every client that never closes locked the others out meanwhile, over and over.
    request = b"GET /v1/missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    held = await hold_connections(served.host, served.port, 2, request)
    for stream in held:
        assert status_of(await stream.receive_some(65536)) == 401  # answered; never closed
    with trio.fail_after(PROMPTLY):
        await _works(served)
    for stream in held:
        await stream.aclose()
