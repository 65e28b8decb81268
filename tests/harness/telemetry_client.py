"""Messengers with the telemetry client attached, in one process on loopback (as the
messenger integration tests run them), and a record of every byte the client sent.

`Uplink` is the client's HTTP call (chat.telemetry.http.post, the real one) with a log of
each request body, decompressed, so privacy tests can read what left; `lose_answers` makes
the next batches' answers vanish after the collector stored them (a connection cut on the
way back), so the client uploads the same events again."""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from chat.messenger import Messenger, MessengerConfig
from chat.telemetry import http
from chat.telemetry.client.attach import AttachedTelemetry
from chat.telemetry.client.service import ClientOptions
from chat.telemetry.outbox import Caps
from chat.telemetry.settings import TelemetrySettings
from storage.aio import AsyncStore
from storage.store import Store


@dataclass
class Uplink:
    sent: list[tuple[str, bytes]] = field(default_factory=list)
    """(path, body as the collector reads it: gunzipped)."""
    lose_answers: int = 0
    lost: int = 0
    answers: list[tuple[float, float, str, http.Answer]] = field(default_factory=list)
    """(asked at, answered at, path, answer), on the monotonic clock."""

    def post(self, url: str, body: bytes, **options: Any) -> http.Answer:
        plain = gzip.decompress(body) if options.get("gzip") else body
        path = url.rsplit("/v1", 1)[-1]
        self.sent.append((path, plain))
        asked = time.monotonic()
        answer = http.post(url, body, **options)
        self.answers.append((asked, time.monotonic(), path, answer))
        if self.lose_answers > 0 and answer.status == 200 and path == "/batch":
            self.lose_answers -= 1
            self.lost += 1
            return http.Answer(0)
        return answer

    def everything(self) -> bytes:
        return b"\n".join(body for _, body in self.sent)


@dataclass
class Reporting:
    messenger: Messenger
    telemetry: AttachedTelemetry
    db: AsyncStore
    scope: trio.CancelScope

    async def stop(self) -> None:
        """The app quits: the telemetry's last heartbeat, flush and upload, then the rest."""
        await self.telemetry.stop()
        await self.telemetry.finished.wait()
        self.scope.cancel()


def fast_options(uplink: Uplink, caps: Caps | None = None) -> ClientOptions:
    return ClientOptions(
        caps=caps or Caps(),
        flush_interval=0.1,
        upload_period=0.3,
        upload_timeout=1.0,
        backoff_base=0.5,
        backoff_cap=2.0,
        strict=True,
        post=uplink.post,
    )


async def start_reporting(
    nursery: trio.Nursery,
    store: Store,
    config: MessengerConfig,
    settings: TelemetrySettings,
    options: ClientOptions,
    *,
    heartbeat: float = 1.0,
) -> Reporting:
    db = AsyncStore(store)
    messenger = Messenger(store, config, db=db)
    telemetry = AttachedTelemetry(settings, messenger, db, options, heartbeat_period=heartbeat)

    async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            async with messenger.run(), trio.open_nursery() as inner:
                await inner.start(telemetry.run)
                task_status.started(scope)
                await trio.sleep_forever()

    scope = await nursery.start(run)
    return Reporting(messenger, telemetry, db, scope)


def settings_for(
    collector_url: str, level: str = "reliability", dry_run: Path | None = None
) -> TelemetrySettings:
    return TelemetrySettings(level=level, collector=collector_url, dry_run=dry_run)
