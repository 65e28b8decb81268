"""Telemetry beside a running messenger (`chinwag serve`, the TUI): the client's writer and
uploader, the hook on the messenger's events and its heartbeat, all in one cancel scope
that `stop` ends (the client then flushes and tries one last short upload)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import trio

from chat.telemetry.client.messenger_hook import MessengerTelemetry, TelemetrySource
from chat.telemetry.client.service import ClientOptions, TelemetryClient
from chat.telemetry.settings import TelemetrySettings
from storage.aio import AsyncStore


class AttachedTelemetry:
    def __init__(
        self,
        settings: TelemetrySettings,
        source: TelemetrySource,
        db: AsyncStore,
        options: ClientOptions | None = None,
        *,
        heartbeat_period: float | None = None,
    ) -> None:
        # The mode is the messenger's (relay node or light client), whatever the caller said.
        mode = source.telemetry_figures().mode
        self.client = TelemetryClient(settings, db, replace(options or ClientOptions(), mode=mode))
        self.hook = MessengerTelemetry(
            self.client.recorder, source, came_online=self.client.came_online
        )
        self._source = source
        self._heartbeat = heartbeat_period
        self._scope = trio.CancelScope()
        self._hook_scope = trio.CancelScope()
        self._hook_done = trio.Event()
        self.finished = trio.Event()
        """Set when the client flushed and made its last upload attempt."""

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await self._run(task_status)
        finally:
            self.finished.set()

    async def _run(self, task_status: Any) -> None:
        with self._scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.client.run)
                if self.client.enabled:
                    self._source.observe(self.hook.observe)
                    await nursery.start(self._run_hook)
                else:
                    self._hook_done.set()
                task_status.started()

    async def _run_hook(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with self._hook_scope:
                if self._heartbeat is None:
                    await self.hook.run(task_status=task_status)
                else:
                    await self.hook.run(self._heartbeat, task_status=task_status)
        finally:
            self._hook_done.set()

    async def stop(self) -> None:
        """The hook's last heartbeat first, then the client's flush and last upload."""
        self._hook_scope.cancel()
        await self._hook_done.wait()
        self._scope.cancel()


async def attach_telemetry(
    nursery: trio.Nursery,
    settings: TelemetrySettings | None,
    source: TelemetrySource,
    db: AsyncStore,
    mode: str = "relay",
) -> AttachedTelemetry | None:
    """Started in `nursery` when telemetry is on, or when it was on before (the opt-out's
    deletion then runs); None when there is nothing to do. CHINWAG_TELEMETRY=off is a kill
    switch: nothing is recorded and nothing at all is sent (not even a deletion request;
    the local queue waits for the person's decision)."""
    settings = settings or TelemetrySettings()
    if settings.forced_off:
        return None
    if not settings.enabled:
        state = await db.run(lambda store: store.telemetry_outbox.state())
        if not state:
            return None
    options = ClientOptions(mode=mode, upload_period=settings.upload_seconds)
    attached = AttachedTelemetry(
        settings, source, db, options, heartbeat_period=settings.heartbeat_seconds
    )
    await nursery.start(attached.run)
    return attached
