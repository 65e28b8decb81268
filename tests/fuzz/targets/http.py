"""HTTP requests from the outside: the REST API (chat/api: token check, routing, path
parameters, query, bounded JSON bodies, each route's handler) in front of a real messenger,
and the metrics endpoint's request line (chat/waku/metrics.py).

The API target parses each input as HTTP/1.1 with h11 (what Hypercorn uses), builds the ASGI
scope the way Hypercorn does, and calls the real `ApiApp` whose routes are the real
`Handlers` of a real `Messenger` (its own profile, no peers), running on a trio thread."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any
from urllib.parse import unquote

import h11
import trio
from harness.fast import FAST

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
STATUSES = frozenset({200, 202, 204, 400, 401, 404, 405, 409, 413})
"""Every answer the API documents; 500 means an exception escaped a handler."""


class _Failures(logging.Handler):
    """Keeps what the app logs when a request fails (its traceback), for the crash report."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@dataclass
class ApiHarness:
    app: ApiApp | None = None
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
        self.app = ApiApp(Router(Handlers(messenger, keepalive=0.05).routes()), TOKEN, b"{}")
        async with messenger.run():
            self.chat_key = messenger.identity().chat_key
            self.token = trio.lowlevel.current_trio_token()
            self.ready.set()
            await trio.sleep_forever()

    def call(self, scope: dict[str, Any], body: bytes, complete: bool) -> list[dict[str, Any]]:
        return trio.from_thread.run(self._call, scope, body, complete, trio_token=self.token)

    async def _call(
        self, scope: dict[str, Any], body: bytes, complete: bool
    ) -> list[dict[str, Any]]:
        assert self.app is not None
        sent: list[dict[str, Any]] = []
        pending = [{"type": "http.request", "body": body, "more_body": False}] if complete else []

        async def receive() -> dict[str, Any]:
            return pending.pop(0) if pending else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        with trio.fail_after(30):
            await self.app(scope, receive, send)
        return sent


@cache
def harness() -> ApiHarness:
    api = ApiHarness()
    api.start()
    return api


def _parse(data: bytes) -> tuple[dict[str, Any], bytes, bool] | None:
    """The ASGI scope, body and whether the body is complete, as Hypercorn would see them."""
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
    try:
        connection.receive_data(data)
        connection.receive_data(b"")
        request = connection.next_event()
        if not isinstance(request, h11.Request):
            return None
        body = bytearray()
        while True:
            event = connection.next_event()
            if isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                complete = True
                break
            else:
                complete = False
                break
    except h11.RemoteProtocolError:
        return None
    path, _, query = request.target.partition(b"?")
    scope = {
        "type": "http",
        "http_version": request.http_version.decode(),
        "method": request.method.decode("ascii").upper(),
        "path": unquote(path.decode("ascii")),
        "raw_path": path,
        "query_string": query,
        "headers": list(request.headers),
    }
    return scope, bytes(body), complete


def fuzz_api(data: bytes) -> None:
    parsed = _parse(data)
    if parsed is None:
        return
    api = harness()
    api.failures.records.clear()
    sent = api.call(*parsed)
    if not sent:
        return  # the client left before its request was complete: nothing to answer
    start = sent[0]
    check(start["type"] == "http.response.start", f"first message {start['type']}")
    status = start["status"]
    if status not in STATUSES:
        raise AssertionError(f"status {status}:\n" + "\n".join(api.failures.records))
    headers = dict(start["headers"])
    if headers.get(b"content-type") == b"application/json":
        body = b"".join(m.get("body", b"") for m in sent[1:])
        value = json.loads(body)
        if status >= 400:
            check(isinstance(value, dict) and set(value) == {"error"}, f"error body {value!r}")


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
        decoder="chat.api.app.ApiApp (token, routing and path parameters, query, bounded JSON "
        "body) and every route's handler, on a real messenger",
        contract="every request gets one of the documented statuses (never 500, which means "
        "an exception escaped); JSON error bodies are {'error': sentence}",
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
