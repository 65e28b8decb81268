"""Serving the API: our HTTP/1.1 server (chat/api/connection.py) in the caller's nursery,
supervised, within chat/api/limits.py.

`listener = bind_api(host, port)` takes the address at once (port 0 picks a free one; a taken
port is an `ApiBindError`, before anything else starts); `await nursery.start(serve_api, app,
listener)` serves until `app.close()`: no new connections are taken, idle ones are closed,
event streams end, other requests get `graceful_timeout` seconds to finish, then the task
returns and the socket is closed.

Supervision (ARCHITECTURE §10): nothing that happens in here ends the caller — in
`chinwag serve` the messenger runs beside this task. A failing connection is logged and
closed; a failure of the server itself (its accept loop) is logged and the server restarted
on the same socket, after a pause that grows while it keeps failing (`RESTART_DELAYS`).
Connections are admitted by chat.waku.admission: at most `max_connections_per_source` from one
address and `max_connections` in all; connections that only wait are shed for new ones.
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from chat.api.connection import AsgiApp, HttpConnection, error_bytes, linger
from chat.api.limits import DEFAULT_LIMITS, ApiLimits
from chat.errors import UserError
from chat.waku.admission import Admission

log = logging.getLogger(__name__)

BACKLOG = 128
RESTART_DELAYS = (0.1, 0.5, 1.0, 5.0, 30.0)
"""Pauses before restarting a failed server, the last repeated; back to the first after
`HEALTHY_RUN` seconds without a failure."""
HEALTHY_RUN = 60.0
REFUSING = 16
"""Refusals (503) being written at once; beyond that, refused connections are just closed."""
REFUSE_TIMEOUT = 1.0
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


class ApiBindError(UserError):
    """The API address cannot be bound (in use, not ours, no permission)."""


class ServedApp(Protocol):
    """What the server needs of chat.api.app.ApiApp."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...
    async def wait_closed(self) -> None: ...
    @property
    def closed(self) -> bool: ...


def bind_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ApiListener:
    """A bound, listening API socket."""

    def __init__(self, host: str, port: int) -> None:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            self.socket = _listening_socket(family, kind, proto, address)
        except OSError as exc:
            hint = " Is the port already in use?" if exc.errno == errno.EADDRINUSE else ""
            raise ApiBindError(
                f"the API cannot listen on {bind_text(host, port)}: {exc.strerror or exc}.{hint}"
            ) from None
        self._kind = (family, kind, proto)
        self.address = self.socket.getsockname()
        bound_host, bound_port = self.address[:2]
        self.url = f"http://{bind_text(bound_host, bound_port)}"

    def reopen(self) -> None:
        """A fresh socket on the same address and port, for a server restarted because its
        socket failed (a socket that was shut down, for one, never accepts again)."""
        self.socket.close()
        self.socket = _listening_socket(*self._kind, self.address)

    def close(self) -> None:
        self.socket.close()


def _listening_socket(family: int, kind: int, proto: int, address: Any) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def bind_api(host: str, port: int) -> ApiListener:
    return ApiListener(host, port)


@dataclass
class _Running:
    connection: HttpConnection
    scope: trio.CancelScope


class ApiServer:
    """The accept loop, the admission of connections, and supervision."""

    def __init__(self, app: ServedApp, listener: ApiListener, limits: ApiLimits) -> None:
        self._app = app
        self._listener = listener
        self._limits = limits
        self.admission = Admission(limits.admission)
        self.restarts = 0
        self.connection_failures = 0
        self._running: dict[int, _Running] = {}
        self._refusing = 0
        self._stopping = False
        self._started = False

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        failures = 0
        while True:
            began = trio.current_time()
            try:
                await self._serve(task_status)
                return
            except Exception:
                if not self._started:
                    raise  # it never served: the caller's start() reports it
                if self._app.closed:
                    log.exception("the API server failed while stopping")
                    return
                if trio.current_time() - began > HEALTHY_RUN:
                    failures = 0
                delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
                failures += 1
                self.restarts += 1
                log.exception(
                    "the API server failed; it restarts in %.1f s (restart %d), chinwag carries on",
                    delay,
                    self.restarts,
                )
            with trio.move_on_after(delay):
                await self._app.wait_closed()
            if self._app.closed:
                return
            try:
                self._listener.reopen()
            except OSError as exc:
                log.error("the API cannot listen on %s again: %s", self._listener.url, exc)

    async def _serve(self, task_status: Any) -> None:
        self._stopping = False
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(self._listener.socket))
        async with trio.open_nursery() as nursery:
            accepting = trio.CancelScope()
            nursery.start_soon(self._accept_loop, listener, nursery, accepting)
            if not self._started:
                self._started = True
                log.info("API listening on %s", self._listener.url)
                task_status.started()
            await self._app.wait_closed()
            accepting.cancel()
            self._stopping = True
            for running in list(self._running.values()):
                running.connection.stop()
            nursery.cancel_scope.deadline = trio.current_time() + self._limits.graceful_timeout

    async def _accept_loop(
        self, listener: trio.SocketListener, nursery: trio.Nursery, accepting: trio.CancelScope
    ) -> None:
        with accepting:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in _RESOURCE_ERRNOS:
                        raise
                    log.warning("the API cannot accept a connection now: %s", exc)
                    await trio.sleep(0.1)
                    continue
                self._admit(stream, nursery)
        # Stopping: new clients are refused by the OS at once instead of waiting in the
        # backlog while the requests in progress finish.
        self._listener.close()

    def _admit(self, stream: trio.SocketStream, nursery: trio.Nursery) -> None:
        try:
            client = _address(stream.socket.getpeername())
            server = _address(stream.socket.getsockname())
        except OSError:
            stream.socket.close()  # already gone
            return
        admitted = self.admission.admit(client[0])
        report = self.admission.report(trio.current_time())
        if report is not None:
            log.warning(
                "API connections: %d waiting one(s) closed for new ones and %d refused "
                "(limits: %d per address, %d in all)",
                report.shed,
                report.refused,
                self._limits.max_connections_per_source,
                self._limits.max_connections,
            )
        if admitted is None:
            if self._refusing < REFUSING:
                self._refusing += 1
                nursery.start_soon(self._refuse, stream)
            else:
                stream.socket.close()
            return
        if admitted.shed is not None and admitted.shed in self._running:
            self._running[admitted.shed].scope.cancel()
        ticket = admitted.ticket
        connection = HttpConnection(
            stream,
            _asgi(self._app),
            self._limits,
            client=client,
            server=server,
            waiting=lambda: self.admission.waiting(ticket),
            busy=lambda: self.admission.busy(ticket),
        )
        running = _Running(connection, trio.CancelScope())
        self._running[ticket] = running
        if self._stopping:
            connection.stop()
        nursery.start_soon(self._run_connection, ticket, running, client[0])

    async def _run_connection(self, ticket: int, running: _Running, source: str) -> None:
        try:
            with running.scope:
                await running.connection.serve()
        except Exception:
            self.connection_failures += 1
            log.exception("an API connection from %s failed; it is closed", source)
        finally:
            del self._running[ticket]
            self.admission.release(ticket)

    async def _refuse(self, stream: trio.SocketStream) -> None:
        sentence = (
            "too many connections from your address are busy "
            f"(at most {self._limits.max_connections_per_source}, "
            f"{self._limits.max_connections} in all); try again when one is done."
        )
        try:
            with trio.move_on_after(REFUSE_TIMEOUT):
                await stream.send_all(error_bytes(503, sentence, ((b"retry-after", b"1"),)))
                await linger(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._refusing -= 1
            await stream.aclose()


def _address(name: Any) -> tuple[str, int]:
    return str(name[0]), int(name[1])


def _asgi(app: ServedApp) -> AsgiApp:
    return app.__call__


async def serve_api(
    app: ServedApp,
    listener: ApiListener,
    *,
    limits: ApiLimits = DEFAULT_LIMITS,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `listener` until `app.close()`; started once requests are answered.
    Never raises once started (see supervision above)."""
    try:
        await ApiServer(app, listener, limits).run(task_status)
    finally:
        listener.close()


__all__ = ["ApiBindError", "ApiListener", "ApiServer", "bind_api", "serve_api"]
