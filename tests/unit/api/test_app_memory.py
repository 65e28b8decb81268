"""What the ASGI app keeps after answering: nothing of a request outlives its response."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from chat.api.app import ApiApp
from chat.api.routing import Router

TOKEN = "t" * 43


async def _unauthorized_request(app: ApiApp) -> tuple[int, weakref.ref[Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/v1/chats", "raw_path": b"/v1/chats"}
    await app(scope, receive, send)
    return sent[0]["status"], weakref.ref(receive)


async def test_refused_requests_are_not_kept() -> None:
    """Found by the api_request fuzz target's harness (memory grew ~2 KB per 401): the 401
    was one shared exception, and each raise chained the request's frames onto it."""
    app = ApiApp(Router([]), TOKEN, b"{}")
    refs = []
    for _ in range(3):
        status, ref = await _unauthorized_request(app)
        assert status == 401
        refs.append(ref)
    gc.collect()
    assert [ref() for ref in refs] == [None, None, None]
