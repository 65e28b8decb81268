"""Serving the API: Hypercorn's trio worker in the caller's nursery.

`url = await nursery.start(serve_api, app, host, port)` binds (port 0 picks a free port),
reports the real URL, and serves until `app.close()`: open event streams end at once, other
requests get `GRACEFUL_TIMEOUT` seconds to finish, then the task returns.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Protocol, cast

import trio
from hypercorn.config import Config as HypercornConfig
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


class UrlStatus(Protocol):
    """What `nursery.start` passes as task_status (trio-typing's stubs lack trio.TaskStatus)."""

    def started(self, value: str) -> None: ...


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


async def serve_api(
    app: ApiApp,
    host: str,
    port: int,
    *,
    task_status: UrlStatus = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on host:port; `task_status.started` gets the base URL (with the real port)."""
    config = hypercorn_config(host, port)
    # Bind here rather than inside Hypercorn, so that a taken port is one plain error.
    try:
        sockets = config.create_sockets()
        for sock in sockets.insecure_sockets:
            sock.listen(config.backlog)
    except OSError as exc:
        raise ApiBindError(
            f"the API cannot listen on {bind_text(host, port)}: {exc.strerror or exc}. "
            "Is the port already in use?"
        ) from None
    asgi = wrap_app(cast(ASGIFramework, app), config.wsgi_max_body_size, "asgi")
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(worker_serve, asgi, config, sockets=sockets, shutdown_trigger=app.wait_closed)
        )
        log.info("API listening on %s", binds[0])
        task_status.started(binds[0])
