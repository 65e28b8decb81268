"""Prometheus metrics: the text exposition format (sans-IO) and a tiny HTTP/1.1 server on trio.

The server answers `GET /metrics` (and HEAD) with the current values in the text format,
version 0.0.4, that every Prometheus scraper reads; any other path is 404, any other method
405. One request per connection: the request head is read up to `MAX_REQUEST_HEAD` bytes
within `READ_TIMEOUT` seconds, the response is written and the connection closed.

Connections are admitted by chat.waku.admission (ARCHITECTURE §10): at most `MAX_CONNECTIONS` in
all and `MAX_CONNECTIONS_PER_SOURCE` from one address. A connection that has not sent its
whole request yet only waits, and the longest waiting one is closed to make room for a new
one: connections held open by the hundred cannot keep a scrape out (they used to fill every
slot until they timed out). Only when every slot that could make room is busy answering is
a new connection refused (503). Nothing here can stop the node: a failing collector is a
500, a broken connection is logged and forgotten.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import trio

from chat.waku.admission import Admission, AdmissionLimits

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_PATH = "/metrics"
MAX_REQUEST_HEAD = 8192
READ_TIMEOUT = 5.0
"""A scraper sends its request at once; 5 s is generous even for a loaded network."""
WRITE_TIMEOUT = 10.0
MAX_CONNECTIONS = 16
MAX_CONNECTIONS_PER_SOURCE = 8
REFUSE_TIMEOUT = 1.0
LINGER_TIMEOUT = 2.0
LINGER_BYTES = 64 * 1024

MetricKind = Literal["counter", "gauge"]

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


class MetricsBindError(Exception):
    """The metrics address cannot be listened on; the message says which and why."""


class MetricError(ValueError):
    """A metric that cannot be written in the exposition format (bad name or label)."""


@dataclass(frozen=True, slots=True)
class Sample:
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric family: a name, its type, a help line and its samples."""

    name: str
    kind: MetricKind
    help: str
    samples: tuple[Sample, ...]

    def __post_init__(self) -> None:
        if not _METRIC_NAME.fullmatch(self.name):
            raise MetricError(f"{self.name!r} is not a valid metric name")
        for sample in self.samples:
            for label, _ in sample.labels:
                if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                    raise MetricError(f"{label!r} is not a valid label name ({self.name})")

    @classmethod
    def single(cls, name: str, kind: MetricKind, help: str, value: float) -> Metric:
        return cls(name, kind, help, (Sample((), value),))

    @classmethod
    def by_label(
        cls,
        name: str,
        kind: MetricKind,
        help: str,
        label: str,
        values: Mapping[str, float],
    ) -> Metric:
        """One sample per label value, sorted so the output is stable between scrapes."""
        samples = tuple(Sample(((label, key),), values[key]) for key in sorted(values))
        return cls(name, kind, help, samples)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def render(metrics: Iterable[Metric]) -> str:
    """The exposition text for these metric families (each name must appear once)."""
    lines: list[str] = []
    seen: set[str] = set()
    for metric in metrics:
        if metric.name in seen:
            raise MetricError(f"metric {metric.name} appears twice")
        seen.add(metric.name)
        lines.append(f"# HELP {metric.name} {_escape_help(metric.help)}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        for sample in metric.samples:
            labels = ",".join(f'{k}="{_escape_label_value(v)}"' for k, v in sample.labels)
            series = f"{metric.name}{{{labels}}}" if labels else metric.name
            lines.append(f"{series} {format_value(sample.value)}")
    return "\n".join(lines) + "\n" if lines else ""


# -- HTTP, sans-IO ---------------------------------------------------------------------------


class HttpError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(_REASONS[status])
        self.status = status


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str


def parse_request_head(head: bytes) -> Request:
    """The method and path of a request head (everything up to the blank line).
    Raises HttpError(400/505) for anything that is not an HTTP/1.x request line."""
    line, _, _ = head.partition(b"\r\n")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise HttpError(400) from None
    parts = text.split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1].startswith("/"):
        raise HttpError(400)
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise HttpError(505)
    return Request(method, target.split("?", 1)[0])


def route(request: Request) -> int:
    """The status this server answers a well-formed request with."""
    if request.path != METRICS_PATH:
        return 404
    if request.method not in ("GET", "HEAD"):
        return 405
    return 200


def response_bytes(status: int, body: bytes = b"", *, head_only: bool = False) -> bytes:
    content_type = CONTENT_TYPE if status == 200 else "text/plain; charset=utf-8"
    if status != 200 and not body:
        body = f"{_REASONS[status]}\n".encode()
    headers = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if status == 405:
        headers.append("Allow: GET, HEAD")
    head = ("\r\n".join(headers) + "\r\n\r\n").encode("ascii")
    return head if head_only else head + body


# -- the trio server -------------------------------------------------------------------------

Collector = Callable[[], Awaitable[Sequence[Metric]]]


class MetricsServer:
    """Serves `collect()`'s metrics over HTTP. A node service (`name`, `serve`); bind first
    with `bind()` so a busy port is a clean error before the node starts."""

    name = "metrics"

    def __init__(
        self,
        collect: Collector,
        address: str = "127.0.0.1",
        port: int = 8008,
        *,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        max_connections_per_source: int = MAX_CONNECTIONS_PER_SOURCE,
    ) -> None:
        self.collect = collect
        self.address = address
        self.port = port
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.admission = Admission(AdmissionLimits(max_connections, max_connections_per_source))
        self.scrapes = 0
        self._listeners: list[trio.SocketListener] = []
        self._connections: dict[int, trio.CancelScope] = {}

    async def bind(self) -> tuple[str, int]:
        """Open the listening socket; returns the bound (address, port)."""
        if not self._listeners:
            try:
                listeners = await trio.open_tcp_listeners(self.port, host=self.address)
            except OSError as exc:
                raise MetricsBindError(
                    f"cannot serve metrics on {self.address}:{self.port}: {exc.strerror or exc}"
                ) from None
            self._listeners = list(listeners)
        return self.bound

    async def close(self) -> None:
        """Close a socket that `bind` opened and `serve` never took over."""
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            await listener.aclose()

    @property
    def bound(self) -> tuple[str, int]:
        if not self._listeners:
            raise RuntimeError("the metrics server is not bound")
        address, port = self._listeners[0].socket.getsockname()[:2]
        return str(address), int(port)

    @property
    def url(self) -> str:
        address, port = self.bound
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{port}{METRICS_PATH}"

    async def serve(self, host: Any = None, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled (`host` is unused: the node passes it to every service)."""
        await self.bind()
        try:
            # serve_listeners closes the listeners when it exits.
            await trio.serve_listeners(self._handle, self._listeners, task_status=task_status)
        finally:
            self._listeners = []

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                source = str(stream.socket.getpeername()[0])
            except OSError:
                return  # gone before we looked
            admitted = self.admission.admit(source)
            self._report()
            if admitted is None:
                with trio.move_on_after(REFUSE_TIMEOUT):
                    await _send(stream, response_bytes(503))
                return
            if admitted.shed is not None and admitted.shed in self._connections:
                self._connections[admitted.shed].cancel()
            ticket = admitted.ticket
            try:
                with trio.CancelScope() as scope:
                    self._connections[ticket] = scope
                    await self._answer(stream, ticket)
                    self.admission.waiting(ticket)  # lingering costs nothing: may be shed
                    await _linger(stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.debug("metrics connection failed: %r", exc)
            finally:
                del self._connections[ticket]
                self.admission.release(ticket)

    def _report(self) -> None:
        report = self.admission.report(trio.current_time())
        if report is not None:
            log.warning(
                "metrics connections: %d waiting one(s) closed for new ones and %d refused "
                "(limits: %d per address, %d in all)",
                report.shed,
                report.refused,
                self.admission.limits.per_source,
                self.admission.limits.total,
            )

    async def _answer(self, stream: trio.SocketStream, ticket: int) -> None:
        with trio.move_on_after(self.read_timeout) as reading:
            head = await _read_head(stream)
        if reading.cancelled_caught:
            await _send(stream, response_bytes(408))
            return
        self.admission.busy(ticket)  # from here on we work for it: never shed
        try:
            if head is None:
                raise HttpError(431)
            request = parse_request_head(head)
            status = route(request)
        except HttpError as exc:
            await _send(stream, response_bytes(exc.status))
            return
        if status != 200:
            await _send(stream, response_bytes(status))
            return
        try:
            body = render(await self.collect()).encode()
        except Exception:
            log.exception("collecting metrics failed")
            await _send(stream, response_bytes(500))
            return
        self.scrapes += 1
        await _send(stream, response_bytes(200, body, head_only=request.method == "HEAD"))


async def _read_head(stream: trio.SocketStream) -> bytes | None:
    """Bytes up to the blank line ending the request head; None if it exceeds the bound.
    Raises BrokenResourceError if the client goes away first."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) >= MAX_REQUEST_HEAD:
            return None
        chunk = await stream.receive_some(MAX_REQUEST_HEAD - len(buf))
        if not chunk:
            raise trio.BrokenResourceError("connection closed before the request was complete")
        buf += chunk
    return buf.split(b"\r\n\r\n", 1)[0]


async def _linger(stream: trio.SocketStream) -> None:
    """Half-close, then read what the client still sends (bounded) until it closes: closing
    with unread bytes would reset the connection and could destroy our response in flight."""
    with trio.move_on_after(LINGER_TIMEOUT):
        await stream.send_eof()
        drained = 0
        while drained < LINGER_BYTES:
            chunk = await stream.receive_some(LINGER_BYTES)
            if not chunk:
                return
            drained += len(chunk)


async def _send(stream: trio.SocketStream, data: bytes) -> None:
    with trio.move_on_after(WRITE_TIMEOUT):
        await stream.send_all(data)
