"""Telemetry for a face that holds an open profile and runs its messenger (the chat screen):
the person's consent, recorded in the profile; the client, run when that consent (or the
config file) says so; and the "what we send" view with pause, resume and opting out.

Which level counts, strongest first: `CHINWAG_TELEMETRY=off`; the choice recorded in the
profile (the first-run consent screen, the "what we send" screen, `chinwag telemetry off`);
the config file's `[telemetry] level`; off. The consent screen asks only when nothing was
chosen and there is somewhere to send to (a collector URL or a dry-run file in the config
file): a question about sending to nowhere would be a question with no meaning.

Every method runs in trio (the UI calls them through its bridge); the profile database is
reached through its one async runner, never on the UI's loop.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import trio

from chat.telemetry import http
from chat.telemetry.client import view
from chat.telemetry.client.attach import AttachedTelemetry
from chat.telemetry.client.messenger_hook import TelemetrySource
from chat.telemetry.client.service import ClientOptions, opt_out
from chat.telemetry.settings import LEVELS, SettingsError, TelemetrySettings
from storage.aio import AsyncStore
from storage.store import Store

log = logging.getLogger(__name__)

CONSENT_KEY = "consent"
"""In the profile's telemetry state: the level the person chose (off, health, reliability).
Opting out keeps it (as `off`): the choice outlives the install it ended."""
HISTORY_KEYS = ("install_id", "next_seq", "delete_request")
"""State that means telemetry ran before: a client starts even at `off`, to opt out."""


def recorded_choice(store: Store) -> str | None:
    choice = store.telemetry_outbox.state().get(CONSENT_KEY)
    return choice if choice in LEVELS else None


def record_choice(store: Store, level: str) -> None:
    store.telemetry_outbox.set_state({CONSENT_KEY: level})


def with_recorded_choice(settings: TelemetrySettings, store: Store) -> TelemetrySettings:
    """For a headless client started without `--telemetry`: the person's recorded choice
    beats the config file's level as it does in the chat screen (an opt-out there holds for
    `chinwag serve` too). A choice to send counts only where there is somewhere to send to;
    CHINWAG_TELEMETRY=off still beats everything."""
    choice = recorded_choice(store)
    if choice is None or settings.forced_off:
        return settings
    if choice != "off" and not (settings.collector or settings.dry_run):
        return settings
    return replace(settings, level=choice)


@dataclass(frozen=True)
class TelemetryReport:
    """What the "what we send" screen shows, read in one go."""

    level: str
    """The level in force (off when CHINWAG_TELEMETRY=off)."""
    forced_off: bool
    running: bool
    """The client runs in this process (records and sends)."""
    paused: bool
    destination: str
    """Where batches go: the collector's URL, the dry-run file, or a dash."""
    status_text: str
    """Level, queue, drops, failures, sent bytes (as `chinwag telemetry status`)."""
    sent_text: str
    """The recent batches, one line each."""
    next_batch: str | None
    """The next batch exactly as it would leave (before gzip); None when nothing waits."""
    queued_events: int
    queued_bytes: int


class ProfileTelemetry:
    """The open profile's telemetry, as the chat screen sees it."""

    def __init__(self, settings: TelemetrySettings, db: AsyncStore) -> None:
        self.configured = settings
        """The config file's table under the environment's override."""
        self._db = db
        self._attached: AttachedTelemetry | None = None
        self._nursery: trio.Nursery | None = None
        self._source: TelemetrySource | None = None
        self._mode = "relay"

    @property
    def destination(self) -> str:
        settings = self.configured
        if settings.dry_run is not None:
            return f"the file {settings.dry_run} (dry run: nothing leaves this computer)"
        return settings.collector or "-"

    @property
    def running(self) -> bool:
        return self._attached is not None

    def dictionary_text(self) -> str:
        """Every field that can leave, with its meaning, purpose and retention."""
        return view.dictionary_text()

    async def effective(self) -> TelemetrySettings:
        """The settings in force: the recorded choice over the config file's level."""
        choice = await self._db.run(recorded_choice)
        if choice is None:
            return self.configured
        return replace(self.configured, level=choice)

    async def needs_consent(self) -> bool:
        """Nothing chosen yet, nothing forced, and somewhere to send to."""
        settings = self.configured
        if settings.forced_off or settings.level != "off":
            return False
        if settings.collector is None and settings.dry_run is None:
            return False
        return await self._db.run(recorded_choice) is None

    async def start(self, nursery: trio.Nursery, source: TelemetrySource, mode: str) -> None:
        """Beside the running messenger, in its nursery: the client when a level is on, or
        when telemetry ran before and is now off (it then opts out)."""
        self._nursery, self._source, self._mode = nursery, source, mode
        try:
            await self._start()
        except Exception:  # telemetry never stops the chat
            log.exception("telemetry could not start")

    async def _start(self) -> None:
        settings = await self.effective()
        if settings.forced_off or self._nursery is None or self._source is None:
            return
        if not settings.enabled:
            state = await self._db.run(lambda store: store.telemetry_outbox.state())
            if not any(key in state for key in HISTORY_KEYS):
                return
        try:
            settings.checked()
        except SettingsError as exc:
            log.warning("telemetry not started: %s", exc)
            return
        options = ClientOptions(mode=self._mode, upload_period=settings.upload_seconds)
        attached = AttachedTelemetry(
            settings, self._source, self._db, options, heartbeat_period=settings.heartbeat_seconds
        )
        await self._nursery.start(_guarded, attached)
        self._attached = attached if settings.enabled else None
        if not settings.enabled:  # it opted out at its start: nothing more to do
            await self._stop(attached)

    async def _stop(self, attached: AttachedTelemetry) -> None:
        attached.hook.closed = True
        await attached.stop()
        await attached.finished.wait()

    async def choose(self, level: str) -> str:
        """Record the person's choice and act on it now: start, change level, or opt out;
        the level chosen."""
        if level not in LEVELS:
            raise ValueError(f"unknown telemetry level {level!r}")
        if level == "off":
            await self.turn_off()
            return level
        await self._db.run(lambda store: record_choice(store, level))
        if self._attached is not None:
            attached, self._attached = self._attached, None
            await self._stop(attached)
        await self._start()
        return level

    async def set_paused(self, paused: bool) -> None:
        """Keep recording, stop (or restart) sending; kept in the profile, as the CLI does."""
        if self._attached is not None:
            await self._attached.client.set_paused(paused)
        else:
            value = "1" if paused else None
            await self._db.run(lambda store: store.telemetry_outbox.set_state({"paused": value}))

    async def turn_off(self) -> bool:
        """Opt out: record `off`, delete the local queue and sent log, forget the install and
        ask the collector to delete what it holds. True when the collector confirmed (or
        there was nothing to delete there); False when the request waits for the next start."""
        await self._db.run(lambda store: record_choice(store, "off"))
        if self._attached is not None:
            attached, self._attached = self._attached, None
            await attached.client.opt_out()
            await self._stop(attached)
        else:
            await self._db.run(opt_out)
            request = await self._db.run(_deletion_request)
            if request is not None:
                answer = await trio.to_thread.run_sync(_ask_deletion, request)
                if answer in (200, 401):
                    await self._db.run(
                        lambda store: store.telemetry_outbox.set_state({"delete_request": None})
                    )
        state = await self._db.run(lambda store: store.telemetry_outbox.state())
        return "delete_request" not in state

    async def report(self) -> TelemetryReport:
        settings = await self.effective()
        snapshot = await self._db.run(lambda store: view.snapshot(store, settings))
        lines = [
            f"batch {b['batch_id'][:8]} {b['status']}: {b['events']} events, {b['bytes']} bytes"
            f" (accepted {b['accepted']}, duplicate {b['duplicate']}, rejected {b['rejected']})"
            for b in snapshot["sent_batches"]
        ]
        return TelemetryReport(
            level=snapshot["level"],
            forced_off=settings.forced_off,
            running=self.running,
            paused=snapshot["paused"],
            destination=self.destination,
            status_text=view.status_text(snapshot),
            sent_text="\n".join(lines) or "no batch sent yet",
            next_batch=snapshot["next_batch"],
            queued_events=snapshot["queued_events"],
            queued_bytes=snapshot["queued_bytes"],
        )


async def _guarded(
    attached: AttachedTelemetry, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    """The client in the messenger's nursery: its failure is logged, never the chat's end
    (nor, when it fails while starting, the caller's)."""
    started = False

    def mark_started() -> None:
        nonlocal started
        started = True
        task_status.started()

    try:
        await attached.run(task_status=SimpleNamespace(started=mark_started))
    except Exception:
        log.exception("telemetry stopped")
    finally:
        if not started:
            task_status.started()


def _deletion_request(store: Store) -> dict[str, Any] | None:
    raw = store.telemetry_outbox.state().get("delete_request")
    request: dict[str, Any] = json.loads(raw) if raw else {}
    return request if request.get("collector") and request.get("token") else None


def _ask_deletion(request: dict[str, Any]) -> int:
    answer = http.post(
        request["collector"] + "/v1/delete", b"{}", token=request["token"], timeout=10.0
    )
    return answer.status
