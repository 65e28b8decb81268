"""Serving the API: Hypercorn's trio worker in the caller's nursery.

`listener = bind_api(host, port)` takes the address at once (port 0 picks a free one; a taken
port is an `ApiBindError`, before anything else starts); `await nursery.start(serve_api, app,
listener)` serves until `app.close()`: open event streams end at once, other requests get
`GRACEFUL_TIMEOUT` seconds to finish, then the task returns and the socket is closed.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, cast

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.typing import ASGIFramework
from hypercorn.utils import wrap_app

from chat.api.app import ApiApp
from chat.errors import UserError

log = logging.getLogger(__name__)

GRACEFUL_TIMEOUT = 2.0
KEEP_ALIVE_TIMEOUT = 5.0
MAX_HEADER_BYTES = 16 * 1024
"""Request line plus headers; larger requests are refused by Hypercorn (h11) itself."""


class ApiBindError(UserError):
    """The API address cannot be bound (in use, not ours, no permission)."""


def bind_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def hypercorn_config(host: str, port: int) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [bind_text(host, port)]
    config.accesslog = None
    config.errorlog = logging.getLogger("chat.api.hypercorn")
    config.graceful_timeout = GRACEFUL_TIMEOUT
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT
    config.h11_max_incomplete_size = MAX_HEADER_BYTES
    config.include_server_header = False
    return config


class ApiListener:
    """A bound, listening API socket and the Hypercorn settings to serve it with."""

    def __init__(self, host: str, port: int) -> None:
        self.config = hypercorn_config(host, port)
        try:
            self.sockets: Sockets = self.config.create_sockets()
            for sock in self.sockets.insecure_sockets:
                sock.listen(self.config.backlog)
        except OSError as exc:
            raise ApiBindError(
                f"the API cannot listen on {bind_text(host, port)}: {exc.strerror or exc}. "
                "Is the port already in use?"
            ) from None
        bound_host, bound_port = self.sockets.insecure_sockets[0].getsockname()[:2]
        self.url = f"http://{bind_text(bound_host, bound_port)}"

    def close(self) -> None:
        for sock in self.sockets.insecure_sockets:
            sock.close()


def bind_api(host: str, port: int) -> ApiListener:
    return ApiListener(host, port)


async def serve_api(
    app: ApiApp, listener: ApiListener, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve `app` on `listener` until `app.close()`; started once requests are answered."""
    asgi = wrap_app(cast(ASGIFramework, app), listener.config.wsgi_max_body_size, "asgi")
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(
                    worker_serve,
                    asgi,
                    listener.config,
                    sockets=listener.sockets,
                    shutdown_trigger=app.wait_closed,
                )
            )
            log.info("API listening on %s", listener.url)
            task_status.started()
    finally:
        listener.close()


__all__ = ["ApiBindError", "ApiListener", "bind_api", "serve_api"]
