"""The telemetry client's HTTP call against a server that does not answer in HTTP (or cuts
its answer short): the collector could not be reached (status 0), never an exception, which
would end the client's task and `chinwag serve` with it."""

from __future__ import annotations

import pytest
from harness.canned_http import canned_http

from chat.telemetry import http


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["not-http", "header-too-long", "cut-short"],
)
def test_an_answer_that_is_not_http_is_unreachable(raw: bytes) -> None:
    with canned_http(raw) as server:
        answer = http.post(server.url + "/v1/batch", b"{}", timeout=2.0)
    assert server.requests == 1
    assert answer.status == 0
