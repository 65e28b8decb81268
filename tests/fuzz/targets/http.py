"""HTTP requests from the outside: the REST API (chat/api: our HTTP/1.1 connection, token
check, routing, path parameters, query, bounded JSON bodies, each route's handler) in front
of a real messenger, and the metrics endpoint's request line (chat/waku/metrics.py).

The API target writes each input, as raw bytes, into the real `HttpConnection` (the code a
socket's bytes go through) over an in-memory stream, then half-closes; the connection runs
the real `ApiApp` whose routes are the real `Handlers` of a real `Messenger` (its own
profile, no peers), on a trio thread. What comes back is read by h11 as a client reads it.
The connection's own parsing is fuzzed on its own (http_server.py)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import trio
from harness.fast import FAST
from harness.http_memory import MalformedResponse, exchange, parse_responses

from chat.api.app import ApiApp
from chat.api.handlers import Handlers
from chat.api.routing import Router
from chat.direct import conversation_id
from chat.identity import Identity, parse_chat_key
from chat.messenger import Messenger
from chat.waku.metrics import HttpError, parse_request_head, response_bytes, route
from fuzz.contract import Target, check, scratch_dir
from storage.kdf import KdfParams
from storage.profiles import Profiles

TOKEN = "fuzz-token-" + "x" * 32
PASSPHRASE = "fuzzing passphrase"
STATUSES = frozenset({200, 202, 204, 400, 401, 404, 405, 409, 413, 431, 505})
"""Every answer the API documents (the app's, and the connection's refusals of a request
that is not HTTP/1.1 or whose head is too large); 500 means an exception escaped a handler.
No 408: the client sends everything at once."""


class _Failures(logging.Handler):
    """Keeps what the app logs when a request fails (its traceback), for the crash report."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


class _Methods:
    """The app, noting the method of each request it is given (a HEAD answer has no body)."""

    def __init__(self, app: ApiApp) -> None:
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.seen.append(scope["method"])
        await self.app(scope, receive, send)


@dataclass
class ApiHarness:
    app: _Methods | None = None
    token: trio.lowlevel.TrioToken | None = None
    chat_key: str = ""
    ready: threading.Event = field(default_factory=threading.Event)
    failures: _Failures = field(default_factory=_Failures)

    def start(self) -> None:
        logging.getLogger("chat.api").addHandler(self.failures)
        threading.Thread(target=trio.run, args=(self._main,), daemon=True).start()
        if not self.ready.wait(60):
            raise RuntimeError("the messenger did not start")

    async def _main(self) -> None:
        profiles = Profiles(scratch_dir("api") / "profiles")
        store = profiles.create(
            "fuzz",
            PASSPHRASE,
            display_name="Fuzz",
            now=1_000,
            kdf=KdfParams.fresh(opslimit=1, memlimit=8192),
        )
        messenger = Messenger(store, replace(FAST, peers=()))
        app = ApiApp(Router(Handlers(messenger, keepalive=0.05).routes()), TOKEN, b"{}")
        self.app = _Methods(app)
        async with messenger.run():
            self.chat_key = messenger.identity().chat_key
            self.token = trio.lowlevel.current_trio_token()
            self.ready.set()
            await trio.sleep_forever()

    def call(self, data: bytes) -> tuple[bytes, list[str]]:
        """Everything the server sent on one connection carrying `data`, and the methods
        of the requests the app was given."""
        return trio.from_thread.run(self._call, data, trio_token=self.token)

    async def _call(self, data: bytes) -> tuple[bytes, list[str]]:
        assert self.app is not None
        self.app.seen = []
        with trio.fail_after(30):
            raw = await exchange(self.app, [data])
        return raw, self.app.seen


@cache
def harness() -> ApiHarness:
    api = ApiHarness()
    api.start()
    return api


def fuzz_api(data: bytes) -> None:
    api = harness()
    api.failures.records.clear()
    raw, methods = api.call(data)
    try:
        responses = parse_responses(raw, methods)
    except MalformedResponse as exc:
        raise AssertionError(f"not well-formed HTTP: {exc}") from None
    check(len(responses) <= len(methods) + 1, f"{len(responses)} answers to {methods}")
    for response in responses:
        status = response.status
        if status not in STATUSES:
            raise AssertionError(f"status {status}:\n" + "\n".join(api.failures.records))
        content_type = response.headers.get(b"content-type", b"")
        if not response.complete:
            # Only an event stream ends with its client (which half-closed after writing).
            check(content_type.startswith(b"text/event-stream"), f"cut short: {response}")
        elif content_type == b"application/json" and response.body:
            value = json.loads(response.body)
            if status >= 400:
                check(isinstance(value, dict) and set(value) == {"error"}, f"error {value!r}")
    check(not api.failures.records, "\n".join(api.failures.records))


def _request(method: str, target: str, body: object = None, token: str = TOKEN) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    head = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}"]
    if payload:
        head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


def _api_seeds() -> Iterable[bytes]:
    me = harness().chat_key
    friend = Identity.create("Friend", 0)
    chat = conversation_id(parse_chat_key(me), friend.chat_key)
    yield _request("GET", "/v1/identity")
    yield _request("PUT", "/v1/identity", {"display_name": "New name"})
    yield _request("GET", "/v1/health")
    yield _request("GET", "/v1/contacts")
    yield _request("POST", "/v1/contacts", {"link": friend.contact_link(), "message": "hi"})
    for action in ("accept", "decline", "cancel"):
        yield _request("POST", f"/v1/contacts/{friend.chat_key_text}/{action}")
    yield _request("GET", f"/v1/contacts/{me}/verification")
    for step in ("start", "confirm", "cancel"):
        yield _request("POST", f"/v1/contacts/{friend.chat_key_text}/verification/{step}")
    yield _request("GET", "/v1/chats")
    yield _request("POST", f"/v1/chats/{chat}/read")
    yield _request("GET", f"/v1/chats/{chat}/messages?limit=10&before=abc")
    yield _request("POST", f"/v1/chats/{chat}/messages", {"text": "hello", "reply_to": None})
    yield _request("GET", "/v1/messages/m1")
    yield _request("POST", "/v1/messages/m1/retry")
    yield _request("POST", "/v1/messages/m1/discard")
    yield _request("GET", "/v1/messages/m1/trace")
    yield _request("GET", "/v1/outbox")
    yield _request("POST", "/v1/outbox/retry")
    yield _request("GET", "/v1/events")
    yield _request("GET", "/openapi.json", token="wrong")
    yield _request("DELETE", "/v1/chats/%ff/messages?x=1&x=2", token="wrong")
    yield _request("GET", "/v1/identity") + _request("GET", "/v1/health")  # pipelined
    yield _request("HEAD", "/v1/chats") + _request("GET", "/v1/events") + _request("GET", "/")


def fuzz_metrics_request(data: bytes) -> None:
    try:
        request = parse_request_head(data)
    except HttpError as exc:
        check(exc.status in (400, 505), f"status {exc.status}")
        response_bytes(exc.status)
        return
    status = route(request)
    check(status in (200, 404, 405), f"status {status}")
    response_bytes(status, b"", head_only=request.method == "HEAD")


TARGETS = (
    Target(
        name="api_request",
        decoder="raw bytes through chat.api.connection.HttpConnection into chat.api.app.ApiApp "
        "(token, routing and path parameters, query, bounded JSON body) and every route's "
        "handler, on a real messenger",
        contract="well-formed HTTP/1.1 answers, each one of the documented statuses (never "
        "500, which means an exception escaped), only an event stream cut short by the "
        "client's close; JSON error bodies are {'error': sentence}; nothing logged as an error",
        fuzz=fuzz_api,
        seeds=_api_seeds,
        max_len=4096,
        tokens=(
            f"Bearer {TOKEN}".encode(),
            b"Content-Length: ",
            b"/v1/",
            b"\\ud800",
            b'{"text": ',
            b"limit=",
        ),
        weight=0.5,
    ),
    Target(
        name="metrics_request",
        decoder="chat.waku.metrics.parse_request_head (the /metrics server's request line)",
        contract="HttpError(400 or 505) only; a parsed request routes to 200, 404 or 405",
        fuzz=fuzz_metrics_request,
        seeds=lambda: [
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n",
            b"POST / HTTP/2\r\n\r\n",
        ],
        max_len=1024,
    ),
)
