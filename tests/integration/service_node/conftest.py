"""Helpers for service node tests: scraping /metrics over a real socket, and parsing it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import pytest
import trio
from trio.testing import MockClock

Scrape = Callable[[str], Awaitable[dict[str, float]]]
HttpGet = Callable[[str, int, bytes], Awaitable[bytes]]


async def http_exchange(address: str, port: int, request: bytes) -> bytes:
    """Send raw request bytes, read the whole response (the server closes the connection)."""
    stream = await trio.open_tcp_stream(address, port)
    async with stream:
        await stream.send_all(request)
        response = b""
        while chunk := await stream.receive_some(65536):
            response += chunk
    return response


def parse_exposition(text: str) -> dict[str, float]:
    """`{series: value}` for every sample line, keyed like `name{label="value"}`."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        samples[series] = float(value)
    return samples


async def scrape_url(url: str) -> dict[str, float]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    response = await http_exchange(parts.hostname, parts.port, request)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
    assert f"Content-Length: {len(body)}".encode() in head
    return parse_exposition(body.decode())


@pytest.fixture
def scrape() -> Scrape:
    return scrape_url


@pytest.fixture
def http_get() -> HttpGet:
    return http_exchange


@pytest.fixture
def clock() -> MockClock:
    """Real-speed time that a test can jump forward (retention intervals)."""
    return MockClock(rate=1.0)
