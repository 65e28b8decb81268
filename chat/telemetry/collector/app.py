"""The collector's HTTP API, an ASGI app served by the project's own HTTP server
(chat/api/server.py: h11, admission limits, timeouts). docs/telemetry.md lists the routes.

Every request is answered with a status and a sentence: 400 unreadable JSON or body, 401 no
or unknown token, 403 bad cohort code or a batch for another install, 413 too large (the body
is never read past its bound, compressed or not), 422 a batch whose envelope breaks the
schema, 429 with `Retry-After` over a rate limit or the daily cap, 503 database unavailable.
Database work runs in worker threads: writes one at a time (one writer), reads beside them.
The client's address is used for the registration limit in memory only, never stored.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import trio
from sqlalchemy.exc import SQLAlchemyError

from chat.api.protocol import JSON_TYPE, ApiError, Response, error_response, json_response
from chat.telemetry import schema
from chat.telemetry.collector.limits import CollectorLimits, Limiter
from chat.telemetry.collector.metrics import CollectorMetrics
from chat.telemetry.collector.report import compute_report
from chat.telemetry.collector.report_html import render_html
from chat.telemetry.collector.store import Install, OverCap, Store

log = logging.getLogger(__name__)

Scope = Mapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
T = TypeVar("T")

DAY_MS = 86_400_000
MAX_SMALL_BODY = 4096
"""Registration and deletion bodies."""
OPEN_COHORT = "open"
_BEARER = b"bearer "
_COMMON = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"))


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    cohorts: Mapping[str, str] = field(default_factory=dict)
    """Cohort code → cohort name; registration needs one of these codes..."""
    open_registration: bool = False
    """...unless this is set (then a registration without code joins cohort `open`)."""
    limits: CollectorLimits = field(default_factory=CollectorLimits)
    report_token: str | None = None
    """With it, `GET /v1/report` answers the reliability report to a bearer of this token."""


class CollectorApp:
    def __init__(
        self,
        store: Store,
        config: CollectorConfig,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.config = config
        self.metrics = CollectorMetrics()
        self.limiter = Limiter(config.limits)
        self._wall = wall_clock
        self._writer = trio.CapacityLimiter(1)
        self._readers = trio.CapacityLimiter(4)
        self._closing = trio.Event()
        self._routes: dict[tuple[str, str], Callable[[Scope, Receive], Awaitable[Response]]] = {
            ("POST", "/v1/register"): self._register,
            ("POST", "/v1/batch"): self._batch,
            ("POST", "/v1/delete"): self._delete,
            ("GET", "/v1/schema"): self._schema,
            ("GET", "/healthz"): self._health,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/v1/report"): self._report,
        }

    def close(self) -> None:
        self._closing.set()

    async def wait_closed(self) -> None:
        await self._closing.wait()

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    async def write(self, work: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(work, limiter=self._writer)

    async def read(self, work: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(work, limiter=self._readers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        path: str = scope["path"]
        route = path if any(p == path for _, p in self._routes) else "other"
        try:
            handler = self._routes.get((method, path))
            if handler is None:
                if route == "other":
                    raise ApiError(404, "there is nothing at this path.")
                allowed = ", ".join(m for m, p in self._routes if p == path)
                raise ApiError(405, f"use {allowed} here.", ((b"allow", allowed.encode()),))
            response = await handler(scope, receive)
        except ApiError as exc:
            response = error_response(exc.status, exc.message, exc.headers)
        except _ClientGone:
            return
        except SQLAlchemyError:
            log.exception("collector database error on %s %s", method, path)
            self.metrics.db_errors += 1
            response = error_response(
                503, "the collector's database is unavailable; try again later.", _RETRY_LATER
            )
        except Exception:
            log.exception("collector request %s %s failed", method, path)
            response = error_response(500, "the collector failed to answer; see its log.")
        self.metrics.request(route, response.status)
        headers = [
            *response.headers,
            *_COMMON,
            (b"content-length", str(len(response.body)).encode()),
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body, "more_body": False})

    # -- routes ----------------------------------------------------------------------------

    async def _register(self, scope: Scope, receive: Receive) -> Response:
        source = str((scope.get("client") or ("unknown",))[0])
        wait = self.limiter.register(source, trio.current_time())
        if wait:
            self.metrics.rate_limited["register"] += 1
            raise _too_many("too many registrations; try again later.", wait)
        body = parse_json(await _read_body(scope, receive, MAX_SMALL_BODY))
        try:
            request = schema.check_registration(body)
        except schema.SchemaError as exc:
            raise ApiError(422, f"the registration is not valid: {exc}.") from None
        code = request.get("cohort_code")
        if code is not None and code in self.config.cohorts:
            cohort = self.config.cohorts[code]
        elif code is None and self.config.open_registration:
            cohort = OPEN_COHORT
        else:
            raise ApiError(403, "this collector needs a valid cohort code to register.")
        now_ms = int(self._wall() * 1000)
        install_id, token = await self.write(lambda: self.store.register(cohort, now_ms))
        self.metrics.registrations += 1
        return json_response({"install_id": install_id, "token": token, "cohort": cohort}, 201)

    async def _batch(self, scope: Scope, receive: Receive) -> Response:
        install = await self._authenticate(scope)
        wait = self.limiter.upload(install.install_id, trio.current_time())
        if wait:
            self.metrics.rate_limited["upload"] += 1
            raise _too_many("too many uploads from this install; try again later.", wait)
        raw = await _read_body(scope, receive, schema.MAX_COMPRESSED_BYTES)
        self.metrics.bytes_received += len(raw)
        if _header(scope, b"content-encoding") == b"gzip":
            raw = gunzip_bounded(raw, schema.MAX_BATCH_BYTES)
        elif len(raw) > schema.MAX_BATCH_BYTES:
            raise _too_large(schema.MAX_BATCH_BYTES)
        now_s = self._wall()
        try:
            batch = schema.check_batch(parse_json(raw), now_ms=int(now_s * 1000))
        except schema.SchemaError as exc:
            self.metrics.batches["invalid"] += 1
            raise ApiError(422, f"the batch is not valid: {exc}.") from None
        if batch.install_id != install.install_id:
            raise ApiError(403, "this batch names another install than the token's.")
        if not self.limiter.known_today(install.install_id, now_s):
            since = int(now_s // 86_400 * 86_400_000)
            stored = await self.read(lambda: self.store.events_since(install.install_id, since))
            self.limiter.seed_today(install.install_id, stored, now_s)
        remaining = self.limiter.remaining_today(install.install_id, now_s)
        received_ms = int(now_s * 1000)
        began = time.perf_counter()
        try:
            result = await self.write(
                lambda: self.store.ingest(install, batch, received_ms, max_new=remaining)
            )
        except OverCap:
            self.metrics.rate_limited["daily_cap"] += 1
            raise _too_many(
                f"this install reached today's cap of {self.config.limits.events_per_day} "
                "events; send the rest tomorrow (UTC).",
                self.limiter.until_tomorrow(now_s),
            ) from None
        self.metrics.ingest_seconds += time.perf_counter() - began
        self.limiter.count(install.install_id, result.accepted, now_s)
        self.metrics.batches["ok"] += 1
        self.metrics.events["accepted"] += result.accepted
        self.metrics.events["duplicate"] += result.duplicate
        self.metrics.events["rejected"] += len(result.rejected)
        return json_response(result.to_json())

    async def _delete(self, scope: Scope, receive: Receive) -> Response:
        install = await self._authenticate(scope)
        await _read_body(scope, receive, MAX_SMALL_BODY)
        deleted = await self.write(lambda: self.store.delete_install(install.install_id))
        self.limiter.forget(install.install_id)
        self.metrics.deletions += 1
        return json_response({"deleted": deleted})

    async def _schema(self, scope: Scope, receive: Receive) -> Response:
        return json_response(
            {
                "schema_versions": list(schema.SUPPORTED_VERSIONS),
                "max_events": schema.MAX_EVENTS_PER_BATCH,
                "max_body_bytes": schema.MAX_COMPRESSED_BYTES,
                "max_batch_bytes": schema.MAX_BATCH_BYTES,
                "batches_per_minute": self.config.limits.batches_per_minute,
                "events_per_day": self.config.limits.events_per_day,
            }
        )

    async def _health(self, scope: Scope, receive: Receive) -> Response:
        await self.read(self.store.ping)
        return json_response({"ok": True})

    async def _metrics(self, scope: Scope, receive: Receive) -> Response:
        installs = await self.read(self.store.count_installs)
        text = self.metrics.render(installs)
        return Response(200, text.encode(), ((b"content-type", b"text/plain; version=0.0.4"),))

    async def _report(self, scope: Scope, receive: Receive) -> Response:
        """`?from=YYYY-MM-DD&to=YYYY-MM-DD&format=json|html`, the same report as the CLI's."""
        token = self.config.report_token
        offered = _header(scope, b"authorization") or b""
        if token is None:
            raise ApiError(404, "this collector does not serve reports (--report-token-file).")
        if not hmac.compare_digest(offered, b"Bearer " + token.encode()):
            raise ApiError(401, "the report needs the operator's report token.")
        query = _query(scope.get("query_string", b""))
        now_ms = int(self._wall() * 1000)
        start_ms, end_ms = report_window(query.get("from"), query.get("to"), now_ms)
        kind = query.get("format", "json")
        if kind not in ("json", "html"):
            raise ApiError(400, "format must be json or html.")
        report = await self.read(
            partial(
                compute_report, self.store.engine, start_ms=start_ms, end_ms=end_ms, now_ms=now_ms
            )
        )
        if kind == "html":
            page = render_html(report).encode()
            return Response(200, page, ((b"content-type", b"text/html; charset=utf-8"),))
        return json_response(report)

    async def _authenticate(self, scope: Scope) -> Install:
        value = _header(scope, b"authorization")
        if value is not None and value[: len(_BEARER)].lower() == _BEARER:
            token = value[len(_BEARER) :].strip().decode("ascii", "replace")
            if 0 < len(token) <= 128:
                install = await self.read(lambda: self.store.install_for(token))
                if install is not None:
                    return install
        raise ApiError(
            401,
            "this request needs the install's token ('Authorization: Bearer <token>' from "
            "POST /v1/register); an unknown or deleted install registers again.",
            ((b"www-authenticate", b'Bearer realm="chinwag-collector"'),),
        )


_RETRY_LATER = ((b"retry-after", b"30"),)


class _ClientGone(Exception):
    pass


def _too_many(sentence: str, wait: float) -> ApiError:
    return ApiError(429, sentence, ((b"retry-after", str(max(1, math.ceil(wait))).encode()),))


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than {limit} bytes.")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).lower() if name == b"content-encoding" else bytes(value)
    return None


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone()
        body += message.get("body", b"")
        if len(body) > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            return bytes(body)


def _query(query_string: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), max_num_fields=5)
    except ValueError:
        raise ApiError(400, "the query has too many fields.") from None
    return dict(pairs)


def report_window(start: str | None, end: str | None, now_ms: int) -> tuple[int, int]:
    """[first day 00:00, day after the last day 00:00) in UTC, from YYYY-MM-DD texts; by
    default the last 7 days up to the end of today."""
    end_ms = _day_ms(end, "to") + DAY_MS if end else (now_ms // DAY_MS + 1) * DAY_MS
    start_ms = _day_ms(start, "from") if start else end_ms - 7 * DAY_MS
    if start_ms >= end_ms:
        raise ApiError(400, "'from' must be on or before 'to'.")
    return start_ms, end_ms


def _day_ms(text: str, name: str) -> int:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(400, f"'{name}' must be a day, YYYY-MM-DD.") from None
    return int(day.timestamp() * 1000)


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Decompressed, never past `limit` bytes (a small gzip bomb stays small)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise ApiError(400, "the body is not valid gzip.") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ApiError(413, f"the batch is larger than {limit} bytes uncompressed.")
    if not inflater.eof:
        raise ApiError(400, "the gzip body is truncated.")
    return out


def parse_json(data: bytes) -> Any:
    try:
        return json.loads(data, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not valid JSON (UTF-8).") from None


def _no_constants(name: str) -> float:
    raise ValueError(name)


__all__ = ["JSON_TYPE", "CollectorApp", "CollectorConfig"]
