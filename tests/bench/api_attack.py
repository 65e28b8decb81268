"""Attack benchmark for the two HTTP servers (issue 13 items 8 and 9): how long an honest
request takes while attackers on the same address hold connections open and trickle bytes.

    python tests/bench/api_attack.py            # 0, 100 and 500 attackers, 200 requests each
    python tests/bench/api_attack.py --quick    # 0 and 100 attackers, 20 requests each

Both servers run in this process on 127.0.0.1 with their default limits: the REST API
(chat/api/server.py, a trivial route: the server is measured, not the messenger) and the
metrics endpoint (chat/waku/metrics.py). Each attacker keeps one connection: it sends half a
request head, then a byte every `TRICKLE` seconds, and reconnects whenever the server closes
it (a shed or a timeout), so the pressure never lets up. Meanwhile an honest client makes
requests one after another, each on a new connection (the worst case: it must be admitted).

Prints one JSON line per server and attacker count: server, attackers, requests, failures
(answers that were not 2xx, or none), p50_ms, p95_ms, max_ms, shed and refused (the
server's admission counters).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from chat.api.app import ApiApp  # noqa: E402
from chat.api.limits import DEFAULT_LIMITS  # noqa: E402
from chat.api.openapi import document_bytes  # noqa: E402
from chat.api.protocol import Request, Response, json_response  # noqa: E402
from chat.api.routing import Route, Router  # noqa: E402
from chat.api.server import ApiServer, bind_api  # noqa: E402
from chat.waku.admission import Admission  # noqa: E402
from chat.waku.metrics import Metric, MetricsServer  # noqa: E402

TOKEN = "b" * 43
TRICKLE = 0.2
REQUEST_LIMIT = 30.0
"""Seconds before an honest request counts as failed."""


async def _ping(request: Request) -> Response:
    return json_response({"pong": True})


async def _collect() -> Sequence[Metric]:
    return [Metric.single("chinwag_bench_up", "gauge", "Up.", 1)]


async def _attacker(host: str, port: int, head: bytes) -> None:
    while True:
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError:
            await trio.sleep(TRICKLE)
            continue
        try:
            async with stream:
                await stream.send_all(head)
                while True:
                    await trio.sleep(TRICKLE)
                    await stream.send_all(b"a")
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # shed or timed out: come back at once


async def _honest(host: str, port: int, request: bytes) -> float | None:
    """Milliseconds for one request on a new connection, or None if it failed."""
    started = time.perf_counter()
    with trio.move_on_after(REQUEST_LIMIT):
        try:
            stream = await trio.open_tcp_stream(host, port)
            async with stream:
                await stream.send_all(request)
                answer = b""
                while b"\r\n" not in answer:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    answer += chunk
        except OSError:
            return None
        status = answer.split(b" ", 2)[1:2]
        if status and status[0].startswith(b"2"):
            return (time.perf_counter() - started) * 1000
    return None


async def _measure(
    server: str,
    address: tuple[str, int],
    attack_head: bytes,
    request: bytes,
    attackers: int,
    requests: int,
    admission: Callable[[], Admission],
) -> dict[str, Any]:
    host, port = address
    before = admission()
    shed, refused = before.shed, before.refused
    timings: list[float] = []
    failures = 0
    async with trio.open_nursery() as nursery:
        for _ in range(attackers):
            nursery.start_soon(_attacker, host, port, attack_head)
        if attackers:
            await trio.sleep(1.0 + TRICKLE)  # let them all connect and start trickling
        for _ in range(requests):
            took = await _honest(host, port, request)
            if took is None:
                failures += 1
            else:
                timings.append(took)
        nursery.cancel_scope.cancel()
    timings.sort()
    after = admission()
    return {
        "server": server,
        "attackers": attackers,
        "requests": requests,
        "failures": failures,
        "p50_ms": round(statistics.median(timings), 2) if timings else None,
        "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 2) if timings else None,
        "max_ms": round(timings[-1], 2) if timings else None,
        "shed": after.shed - shed,
        "refused": after.refused - refused,
    }


async def run(attacker_counts: Sequence[int], requests: int, emit: Callable[[str], None]) -> None:
    app = ApiApp(Router([Route("GET", "/v1/ping", _ping)]), TOKEN, document_bytes())
    listener = bind_api("127.0.0.1", 0)
    api = ApiServer(app, listener, DEFAULT_LIMITS)
    metrics = MetricsServer(_collect, "127.0.0.1", 0)
    api_address = listener.socket.getsockname()[:2]
    api_request = (
        f"GET /v1/ping HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    scrape = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(api.run)
            await nursery.start(metrics.serve)
            runs: list[Callable[[int], Awaitable[dict[str, Any]]]] = [
                lambda n: _measure(
                    "api", api_address, b"GET /v1/ping HTTP/1.1\r\nHost: x\r\nX-A: ",
                    api_request, n, requests, lambda: api.admission,
                ),
                lambda n: _measure(
                    "metrics", metrics.bound, b"GET /metrics HTTP/1.1\r\nX-A: ",
                    scrape, n, requests, lambda: metrics.admission,
                ),
            ]  # fmt: skip
            for measure in runs:
                for count in attacker_counts:
                    emit(json.dumps(await measure(count)))
            app.close()
            nursery.cancel_scope.cancel()
    finally:
        listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0 and 100 attackers, 20 requests")
    parser.add_argument("--attackers", type=int, nargs="*", help="attacker counts to run")
    parser.add_argument("--requests", type=int, help="honest requests per run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the servers' shed reports are what we count
    counts = args.attackers or ([0, 100] if args.quick else [0, 100, 500])
    requests = args.requests or (20 if args.quick else 200)
    trio.run(run, counts, requests, lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
