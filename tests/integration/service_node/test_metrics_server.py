"""The /metrics HTTP server on a real socket: what it answers, and what it shrugs off."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
import trio

from chat.waku.metrics import MAX_REQUEST_HEAD, Metric, MetricsBindError, MetricsServer

HttpGet = Callable[[str, int, bytes], Awaitable[bytes]]
DEADLINE = 10


class Values:
    def __init__(self) -> None:
        self.scrapes = 0
        self.fail = False

    async def collect(self) -> Sequence[Metric]:
        if self.fail:
            raise RuntimeError("collector broke")
        self.scrapes += 1
        return [Metric.single("chinwag_test_scrapes_total", "counter", "Scrapes.", self.scrapes)]


@pytest.fixture
async def server() -> AsyncIterator[tuple[MetricsServer, Values]]:
    values = Values()
    metrics = MetricsServer(values.collect, "127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(metrics.serve)
        yield metrics, values
        nursery.cancel_scope.cancel()


async def test_get_metrics(server: tuple[MetricsServer, Values], http_get: HttpGet) -> None:
    metrics, _ = server
    address, port = metrics.bound
    assert metrics.url == f"http://127.0.0.1:{port}/metrics"
    with trio.fail_after(DEADLINE):
        first = await http_get(address, port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        second = await http_get(address, port, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n")
    body = (
        b"# HELP chinwag_test_scrapes_total Scrapes.\n"
        b"# TYPE chinwag_test_scrapes_total counter\n"
        b"chinwag_test_scrapes_total 1\n"
    )
    assert (
        first
        == (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        + body
    )
    assert second.endswith(b"chinwag_test_scrapes_total 2\n")
    assert metrics.scrapes == 2


@pytest.mark.parametrize(
    ("request_bytes", "status_line"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 404 Not Found\r\n"),
        (b"GET /favicon.ico HTTP/1.1\r\n\r\n", b"HTTP/1.1 404 Not Found\r\n"),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"HTTP/1.1 405 Method"),
        (b"\x16\x03\x01\x00\x05hello\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"GET /metrics SPDY/3\r\n\r\n", b"HTTP/1.1 505 HTTP Version"),
        (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * MAX_REQUEST_HEAD, b"HTTP/1.1 431 Request"),
    ],
)
async def test_anything_else_gets_a_plain_error(
    server: tuple[MetricsServer, Values],
    http_get: HttpGet,
    request_bytes: bytes,
    status_line: bytes,
) -> None:
    metrics, values = server
    with trio.fail_after(DEADLINE):
        response = await http_get(*metrics.bound, request_bytes)
    assert response.startswith(status_line)
    assert values.scrapes == 0


async def test_head_has_no_body(server: tuple[MetricsServer, Values], http_get: HttpGet) -> None:
    metrics, _ = server
    with trio.fail_after(DEADLINE):
        response = await http_get(*metrics.bound, b"HEAD /metrics HTTP/1.1\r\n\r\n")
    head, sep, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and sep and body == b""


async def test_a_failing_collector_is_a_500_and_the_server_carries_on(
    server: tuple[MetricsServer, Values], http_get: HttpGet
) -> None:
    metrics, values = server
    values.fail = True
    with trio.fail_after(DEADLINE):
        broken = await http_get(*metrics.bound, b"GET /metrics HTTP/1.1\r\n\r\n")
        values.fail = False
        fine = await http_get(*metrics.bound, b"GET /metrics HTTP/1.1\r\n\r\n")
    assert broken.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert fine.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_clients_that_hang_up_early_do_not_hurt(
    server: tuple[MetricsServer, Values], http_get: HttpGet
) -> None:
    metrics, _ = server
    with trio.fail_after(DEADLINE):
        for partial in (b"", b"GET /met", b"GET /metrics HTTP/1.1\r\n"):
            stream = await trio.open_tcp_stream(*metrics.bound)
            await stream.send_all(partial)
            await stream.aclose()
        response = await http_get(*metrics.bound, b"GET /metrics HTTP/1.1\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_a_busy_port_is_a_clear_error() -> None:
    first = MetricsServer(Values().collect, "127.0.0.1", 0)
    _, port = await first.bind()
    second = MetricsServer(Values().collect, "127.0.0.1", port)
    with pytest.raises(MetricsBindError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
        await second.bind()
    await first.close()
    await second.bind()  # the port is free again
    await second.close()
