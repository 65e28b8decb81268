"""`chinwag collector serve`: the collector's API on the project's HTTP server, and its
retention job (at start, then daily), until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import time
from functools import partial

import trio

from chat.api.limits import DEFAULT_LIMITS, ApiLimits
from chat.api.server import ApiListener, serve_api
from chat.telemetry.collector.app import CollectorApp
from chat.telemetry.collector.store import Store

log = logging.getLogger(__name__)

PURGE_PERIOD_S = 86_400.0


async def retention_job(app: CollectorApp, *, period_s: float = PURGE_PERIOD_S) -> None:
    """Purges old rows now and every `period_s`; a failure is logged and retried next time."""
    while True:
        now_ms = int(time.time() * 1000)
        try:
            deleted = await app.write(partial(app.store.purge, now_ms))
        except Exception:
            log.exception("the collector's retention job failed; it runs again later")
        else:
            app.metrics.purged.update(deleted)
            log.info("retention job: %s", ", ".join(f"{k}={v}" for k, v in deleted.items()))
        with trio.move_on_after(period_s):
            await app.wait_closed()
        if app.closed:
            return


async def serve_collector(
    app: CollectorApp, listener: ApiListener, limits: ApiLimits = DEFAULT_LIMITS
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve_api, app, listener, limits=limits))
            nursery.start_soon(retention_job, app)
            print(f"collector {listener.url}", flush=True)
            print("ready", flush=True)
            async for signum in signals:
                log.info("collector stopping on %s", signal.Signals(signum).name)
                break
            app.close()
    print("chinwag collector stopped", flush=True)


def open_store(url: str) -> Store:
    from chat.telemetry.collector.tables import open_engine

    return Store(open_engine(url))
