"""The ASGI application: authentication, routing, bounded bodies, JSON errors, and streaming
responses (server-sent events) that end when the client goes away or the server stops.

Order of checks for every request: `GET /openapi.json` is answered without a token; anything
else needs `Authorization: Bearer <token>` (401), a known path (404) and method (405), a body
of at most `max_body` bytes (413); then the handler runs, and its MessengerError becomes 404,
400 or 409. Anything unexpected is logged and answered 500 without details.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import trio

from chat.api.auth import bearer_matches
from chat.api.protocol import (
    JSON_TYPE,
    MAX_BODY_BYTES,
    ApiError,
    Request,
    Response,
    StreamResponse,
    error_response,
    status_for,
)
from chat.api.routing import Router
from chat.events import MessengerError

log = logging.getLogger(__name__)

Scope = Mapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

OPENAPI_PATH = b"/openapi.json"
MAX_QUERY_FIELDS = 20

COMMON_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
)


def _unauthorized() -> ApiError:
    # A new error each time: raising one shared instance chains every request's traceback onto
    # it, and with the traceback each request's frames, for as long as the process runs.
    return ApiError(
        401,
        "this request needs the API token: send 'Authorization: Bearer <token>' "
        "(chinwag serve prints the token when it starts).",
        ((b"www-authenticate", b'Bearer realm="chinwag"'),),
    )


class ClientGone(Exception):
    """The client disconnected before its request was complete."""


class ApiApp:
    def __init__(
        self, router: Router, token: str, openapi: bytes, *, max_body: int = MAX_BODY_BYTES
    ) -> None:
        self._router = router
        self._token = token
        self._openapi = openapi
        self._max_body = max_body
        self._closing = trio.Event()

    def close(self) -> None:
        """End every open event stream; the server stops accepting requests on `wait_closed`."""
        self._closing.set()

    async def wait_closed(self) -> None:
        await self._closing.wait()

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            try:
                response = await self._respond(scope, receive)
            except ClientGone:
                return
            if isinstance(response, StreamResponse):
                await self._stream(response, receive, send)
            else:
                await _send_response(response, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _respond(self, scope: Scope, receive: Receive) -> Response | StreamResponse:
        method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        try:
            if raw_path == OPENAPI_PATH:
                if method != "GET":
                    raise ApiError(405, f"{method} is not allowed here; use GET.", _ALLOW_GET)
                return Response(200, self._openapi, ((b"content-type", JSON_TYPE),))
            if not bearer_matches(_header(scope, b"authorization"), self._token):
                raise _unauthorized()
            match = self._router.match(method, raw_path)
            request = Request(
                method=method,
                path=match.route.pattern,
                params=match.params,
                query=_query(scope.get("query_string", b"")),
                body=await self._read_body(scope, receive),
            )
            response = await match.route.handler(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.message, exc.headers)
        except MessengerError as exc:
            response = error_response(status_for(exc), str(exc))
        except ClientGone:
            raise
        except Exception:
            log.exception("API request %s %s failed", method, raw_path[:200])
            response = error_response(500, "the server failed to answer; see chinwag's log.")
        if isinstance(response, Response):
            log.debug("API %s %s -> %d", method, raw_path[:200], response.status)
        return response

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise _too_large(self._max_body)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            body += message.get("body", b"")
            if len(body) > self._max_body:
                raise _too_large(self._max_body)
            if not message.get("more_body", False):
                return bytes(body)

    async def _stream(self, response: StreamResponse, receive: Receive, send: Send) -> None:
        started = False
        gone = False

        async def send_chunk(chunk: bytes) -> None:
            nonlocal started
            if not started:
                headers = [(b"content-type", response.content_type), *COMMON_HEADERS]
                headers += response.headers
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                started = True
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        async def until_gone(scope: trio.CancelScope) -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            scope.cancel()

        async def until_closing(scope: trio.CancelScope) -> None:
            await self._closing.wait()
            scope.cancel()

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(until_gone, nursery.cancel_scope)
                nursery.start_soon(until_closing, nursery.cancel_scope)
                await response.produce(send_chunk)
                nursery.cancel_scope.cancel()
        except Exception:
            log.exception("API event stream failed")
        if gone:
            return
        if not started:
            await send_chunk(b"")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


_ALLOW_GET = ((b"allow", b"GET"),)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than {limit} bytes.")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def _query(query_string: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            query_string.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS
        )
    except ValueError:
        raise ApiError(400, f"the query has more than {MAX_QUERY_FIELDS} fields.") from None
    query: dict[str, str] = {}
    for name, value in pairs:
        if name in query:
            raise ApiError(400, f"the query parameter '{name}' is given more than once.")
        query[name] = value
    return query


async def _send_response(response: Response, send: Send) -> None:
    headers = [*response.headers, *COMMON_HEADERS]
    if response.status != 204:
        headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body, "more_body": False})
