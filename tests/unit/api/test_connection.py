"""The API's HTTP/1.1 connection (chat/api/connection.py) on inputs the fuzz targets found,
over in-memory streams (tests/harness/http_memory.py): the same code a socket's bytes go
through, on trio's mock clock."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from harness.http_memory import exchange, parse_responses

from chat.api.app import ApiApp
from chat.api.protocol import Request, Response, json_response
from chat.api.routing import Route, Router

TOKEN = "t" * 43


async def _items(request: Request) -> Response:
    return json_response({"items": []})


APP = ApiApp(Router([Route("GET", "/v1/items", _items)]), TOKEN, b"{}")


@pytest.mark.parametrize("method", [b"HeAD", b"head", b"get"])
async def test_a_method_is_case_sensitive_and_its_answer_whole(
    method: bytes, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by the api_request fuzz target: `HeAD` was upper-cased for the app, so the
    connection left out the body of its answer as for HEAD, while h11 (rightly: methods are
    case-sensitive) expected one; the app's send raised, the error was logged with a
    traceback and the client got a head without its body. Without the token (a 401) too."""
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    requests = [
        method + b" /v1/items HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
        method + b" /v1/items HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/items HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
    ]
    with caplog.at_level(logging.ERROR, logger="chat.api"):
        raw = await exchange(APP, [b"".join(requests)])
    responses = parse_responses(raw, [method.decode()] * 2 + ["GET"])
    assert [(r.status, r.complete) for r in responses] == [(405, True), (401, True), (200, True)]
    assert responses[0].headers[b"allow"] == b"GET"
    assert b"is not allowed here" in responses[0].body
    assert caplog.records == []
