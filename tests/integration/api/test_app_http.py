"""The ASGI app behind our HTTP/1.1 server, over real HTTP on 127.0.0.1: the checks every
request passes (token, path, method, body size, JSON), error mapping, and event streams that
end when the client leaves or the server stops. The routes here are the router's own test
routes; the messenger's routes are tested against a real messenger in test_api_messenger.py."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import trio

from chat.api.app import ApiApp
from chat.api.openapi import document, document_bytes
from chat.api.protocol import (
    MAX_BODY_BYTES,
    Request,
    Response,
    SendChunk,
    StreamResponse,
    json_response,
)
from chat.api.routing import Route, Router
from chat.api.server import ApiBindError, bind_api, serve_api
from chat.api.sse import comment_frame, event_frame, parse_frames
from chat.events import InvalidInput, NotFound, NotPossible
from chat.waku.host import TaskStatusLike

TOKEN = "t" * 43
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Feed:
    """A stream route's source: the test sends chunks; the route notes when it ended."""

    send: trio.MemorySendChannel[bytes]
    receive: trio.MemoryReceiveChannel[bytes]
    ended: trio.Event = field(default_factory=trio.Event)


def _routes(feed: Feed) -> list[Route]:
    async def echo(request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"text"}))
        return json_response({"params": dict(request.params), "query": dict(request.query),
                              "body": body}, 202)  # fmt: skip

    async def raises(request: Request) -> Response:
        kind = request.params["kind"]
        errors: dict[str, Exception] = {
            "notfound": NotFound("no such chat."),
            "invalid": InvalidInput("bad link."),
            "conflict": NotPossible("not now."),
            "bug": RuntimeError("secret detail"),
        }
        raise errors[kind]

    async def stream(request: Request) -> StreamResponse:
        async def produce(send: SendChunk) -> None:
            try:
                await send(comment_frame("connected"))
                async for chunk in feed.receive:
                    await send(chunk)
            finally:
                feed.ended.set()

        return StreamResponse(produce, b"text/event-stream")

    return [
        Route("POST", "/v1/echo/{id}", echo),
        Route("GET", "/v1/echo/{id}", echo),
        Route("GET", "/v1/raise/{kind}", raises),
        Route("GET", "/v1/stream", stream),
    ]


@dataclass
class Served:
    app: ApiApp
    url: str
    feed: Feed
    stopped: trio.Event


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    send, receive = trio.open_memory_channel[bytes](10)
    feed = Feed(send, receive)
    app = ApiApp(Router(_routes(feed)), TOKEN, document_bytes())
    stopped = trio.Event()

    listener = bind_api("127.0.0.1", 0)

    async def run(task_status: TaskStatusLike) -> None:
        await serve_api(app, listener, task_status=task_status)
        stopped.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(run)
        yield Served(app, listener.url, feed, stopped)
        app.close()


@pytest.fixture
async def client(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.url) as http:
        yield http


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    message: str = body["error"]
    assert message.endswith(".")
    return message


async def test_the_url_has_the_real_port(served: Served) -> None:
    assert served.url.startswith("http://127.0.0.1:")
    assert int(served.url.rsplit(":", 1)[1]) > 0


async def test_the_openapi_document_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == json.loads(json.dumps(document()))
    response = await client.post("/openapi.json")
    _error(response, 405)
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
     {"Authorization": f"Bearer {TOKEN}x"}, {"X-Token": TOKEN}],
)  # fmt: skip
async def test_everything_else_needs_the_token(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for method, path in (("GET", "/v1/echo/1"), ("POST", "/v1/echo/1"), ("GET", "/nowhere")):
        response = await client.request(method, path, headers=headers, content=b"{}")
        assert "API token" in _error(response, 401)
        assert response.headers["www-authenticate"] == 'Bearer realm="chinwag"'


async def test_a_request_reaches_its_handler(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/echo/a%20b?limit=5&x=", headers=AUTH, json={"text": "hé"})
    assert response.status_code == 202
    assert response.json() == {
        "params": {"id": "a b"},
        "query": {"limit": "5", "x": ""},
        "body": {"text": "hé"},
    }
    assert response.headers["cache-control"] == "no-store"
    assert "server" not in response.headers


async def test_unknown_paths_and_methods(client: httpx.AsyncClient) -> None:
    assert "openapi.json" in _error(await client.get("/v1/nothing", headers=AUTH), 404)
    _error(await client.get("/v1/echo/1/", headers=AUTH), 404)
    _error(await client.get("/", headers=AUTH), 404)
    response = await client.delete("/v1/echo/1", headers=AUTH)
    _error(response, 405)
    assert response.headers["allow"] == "GET, POST"


async def test_bad_bodies_and_queries_are_400(client: httpx.AsyncClient) -> None:
    cases = [
        (b"{", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"text": "a", "extra": 1}', "unknown field(s): extra"),
        (b"\xff\xfe", "not valid JSON"),
    ]
    for body, expected in cases:
        response = await client.post("/v1/echo/1", headers=AUTH, content=body)
        assert expected in _error(response, 400)
    response = await client.get("/v1/echo/1?a=1&a=2", headers=AUTH)
    assert "more than once" in _error(response, 400)
    many = "&".join(f"q{i}=1" for i in range(30))
    assert "more than 20" in _error(await client.get(f"/v1/echo/1?{many}", headers=AUTH), 400)


async def test_bodies_are_bounded(client: httpx.AsyncClient) -> None:
    big = b" " * (MAX_BODY_BYTES + 1)
    response = await client.post("/v1/echo/1", headers=AUTH, content=big)
    assert "larger than 65536 bytes" in _error(response, 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for _ in range(5):
            yield b" " * (MAX_BODY_BYTES // 4)

    response = await client.post("/v1/echo/1", headers=AUTH, content=chunks())
    _error(response, 413)
    exact = b"{}" + b" " * (MAX_BODY_BYTES - 2)
    assert (await client.post("/v1/echo/1", headers=AUTH, content=exact)).status_code == 202


async def test_messenger_errors_and_bugs_become_statuses(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert _error(await client.get("/v1/raise/notfound", headers=AUTH), 404) == "no such chat."
    assert _error(await client.get("/v1/raise/invalid", headers=AUTH), 400) == "bad link."
    assert _error(await client.get("/v1/raise/conflict", headers=AUTH), 409) == "not now."
    with caplog.at_level(logging.ERROR, logger="chat.api.app"):
        message = _error(await client.get("/v1/raise/bug", headers=AUTH), 500)
    assert "secret detail" not in message
    assert "secret detail" in caplog.text  # the log has the traceback


async def _read_events(chunks: AsyncIterator[bytes], count: int) -> list[tuple[str, str]]:
    buffered, events = b"", []
    async for chunk in chunks:
        buffered += chunk
        found, buffered = parse_frames(buffered)
        events += found
        if len(events) >= count:
            break
    return events


async def test_an_event_stream_ends_when_the_client_leaves(
    served: Served, client: httpx.AsyncClient
) -> None:
    async with client.stream("GET", "/v1/stream", headers=AUTH) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert "content-length" not in response.headers
        await served.feed.send.send(event_frame("one", {"n": 1}))
        await served.feed.send.send(event_frame("two", {"n": 2}))
        assert await _read_events(response.aiter_raw(), 2) == [
            ("one", '{"n":1}'),
            ("two", '{"n":2}'),
        ]
    with trio.fail_after(5):
        await served.feed.ended.wait()  # the producer was cancelled, its cleanup ran


async def test_an_event_stream_without_a_token_never_starts(
    served: Served, client: httpx.AsyncClient
) -> None:
    _error(await client.get("/v1/stream"), 401)
    assert not served.feed.ended.is_set()


async def test_stopping_the_server_ends_event_streams_cleanly(
    served: Served, client: httpx.AsyncClient
) -> None:
    async with client.stream("GET", "/v1/stream", headers=AUTH) as response:
        chunks = response.aiter_raw()
        await served.feed.send.send(event_frame("one", {}))
        assert await _read_events(chunks, 1) == [("one", "{}")]
        served.app.close()
        rest = b"".join([chunk async for chunk in chunks])  # the body ends, without an error
        assert parse_frames(rest) == ([], b"")
    with trio.fail_after(5):
        await served.stopped.wait()
    assert served.feed.ended.is_set()
    with pytest.raises(httpx.ConnectError):
        await client.get("/openapi.json")


async def test_a_port_in_use_is_a_sentence(served: Served) -> None:
    port = int(served.url.rsplit(":", 1)[1])
    with pytest.raises(ApiBindError, match=f"cannot listen on 127.0.0.1:{port}: .* in use"):
        bind_api("127.0.0.1", port)
