"""A real collector for tests: the CollectorApp on the project's HTTP server on loopback,
over a real database (SQLite file or PostgreSQL), and an httpx client for it; helpers to
register installs and upload batches as the client does (gzip JSON, bearer token)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import trio
from sqlalchemy import Engine, func, select

from chat.api.server import bind_api, serve_api
from chat.telemetry.collector import tables
from chat.telemetry.collector.app import CollectorApp, CollectorConfig
from chat.telemetry.collector.report import compute_report
from chat.telemetry.collector.store import Store
from chat.telemetry.collector.tables import open_engine
from harness.telemetry import DAY_MS, FakeInstall, gzip_json


@dataclass
class RunningCollector:
    app: CollectorApp
    client: httpx.AsyncClient
    url: str

    @property
    def engine(self) -> Engine:
        return self.app.store.engine

    async def register(self, cohort_code: str | None = None, mode: str = "relay") -> FakeInstall:
        body: dict[str, Any] = {"schema_version": 1}
        if cohort_code is not None:
            body["cohort_code"] = cohort_code
        response = await self.client.post("/v1/register", json=body)
        assert response.status_code == 201, response.text
        answer = response.json()
        return FakeInstall(answer["install_id"], answer["token"], mode=mode)

    async def upload(
        self, install: FakeInstall, events: list[dict[str, Any]], **batch: Any
    ) -> httpx.Response:
        body = install.batch(events, sent_at=now_ms(), **batch)
        return await self.post_batch(install.token, gzip_json(body), gzip=True)

    async def post_batch(self, token: str, body: bytes, *, gzip: bool) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if gzip:
            headers["Content-Encoding"] = "gzip"
        return await self.client.post("/v1/batch", content=body, headers=headers)

    def report(self, start_ms: int, end_ms: int) -> dict[str, Any]:
        report = compute_report(self.engine, start_ms=start_ms, end_ms=end_ms, now_ms=now_ms())
        # What `--json` prints must be JSON.
        result: dict[str, Any] = json.loads(json.dumps(report))
        return result

    def rows(self) -> dict[str, int]:
        with self.engine.connect() as db:
            return {
                t.name: int(db.execute(select(func.count()).select_from(t)).scalar_one())
                for t in tables.PER_INSTALL
            }


def now_ms() -> int:
    return int(time.time() * 1000)


def days_ago(days: float) -> int:
    """A time well inside the window the report covers, `days` before now."""
    return now_ms() - int(days * DAY_MS)


@asynccontextmanager
async def running_collector(
    db_url: str,
    config: CollectorConfig | None = None,
    *,
    wall_clock: Callable[[], float] = time.time,
) -> AsyncIterator[RunningCollector]:
    store = Store(open_engine(db_url))
    app = CollectorApp(
        store, config or CollectorConfig(open_registration=True), wall_clock=wall_clock
    )
    listener = bind_api("127.0.0.1", 0)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_api, app, listener)
            async with httpx.AsyncClient(base_url=listener.url, timeout=20) as client:
                yield RunningCollector(app, client, listener.url)
            app.close()
    finally:
        store.engine.dispose()
