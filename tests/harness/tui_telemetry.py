"""A real telemetry collector for the TUI tests, served on the test network's trio thread
(tests/ui/conftest.py), and a config file's `[telemetry]` table pointing at it with short
timers (the code paths are the production ones)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio
from sqlalchemy import select

from chat.config import Config
from chat.telemetry.collector import tables
from chat.telemetry.settings import TelemetrySettings
from harness.collector import RunningCollector, running_collector


def start_collector(network: Any, tmp: Path) -> RunningCollector:
    """A collector on SQLite, until the network's thread stops."""
    url = f"sqlite:///{tmp / 'collector.sqlite'}"

    async def hold(task_status: trio.TaskStatus[RunningCollector]) -> None:
        async with running_collector(url) as collector:
            task_status.started(collector)
            await trio.sleep_forever()

    async def start() -> RunningCollector:
        assert network.nursery is not None
        collector: RunningCollector = await network.nursery.start(hold)
        return collector

    result: RunningCollector = network.run(start)
    return result


def rows(network: Any, collector: RunningCollector) -> dict[str, int]:
    """The collector's per-install row counts, read on its own thread."""

    async def read() -> dict[str, int]:
        return await trio.to_thread.run_sync(collector.rows)

    result: dict[str, int] = network.run(read)
    return result


def reporting_config(config: Config, collector_url: str, **table: Any) -> Config:
    """`config` with `[telemetry] collector = URL` (level off unless given) and fast timers."""
    settings = TelemetrySettings(collector=collector_url, heartbeat_seconds=1.0, upload_seconds=1.0)
    return replace(config, telemetry=replace(settings, **table))


def event_types(network: Any, collector: RunningCollector) -> Counter[str]:
    """The types of the events the collector stored, counted."""

    def read() -> Counter[str]:
        with collector.engine.connect() as db:
            return Counter(str(t) for t in db.execute(select(tables.events.c.type)).scalars())

    async def run() -> Counter[str]:
        return await trio.to_thread.run_sync(read)

    result: Counter[str] = network.run(run)
    return result
