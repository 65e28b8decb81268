"""The telemetry client's trio side: it only moves bytes. The writer persists what the
recorder holds every `flush_interval` seconds (one transaction); the uploader sends the
oldest events in batches when its schedule says so, registers with the collector first, and
applies the answer; opting out clears the local queue and asks the collector to delete
what it holds (the request survives restarts until the collector acknowledged it).

Nothing here is on the message path: the messenger only calls `recorder.record`.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from chat import __version__
from chat.telemetry import http, identifiers, outbox
from chat.telemetry.outbox import Caps
from chat.telemetry.recorder import Recorder
from chat.telemetry.schedule import UploadSchedule
from chat.telemetry.schema import SCHEMA_VERSION
from chat.telemetry.settings import TelemetrySettings
from storage.aio import AsyncStore
from storage.repositories.telemetry_outbox import SentBatch
from storage.store import Store

log = logging.getLogger(__name__)

Post = Callable[..., http.Answer]


@dataclass
class ClientOptions:
    mode: str = "relay"
    caps: Caps = field(default_factory=Caps)
    flush_interval: float = 1.0
    upload_period: float = 60.0
    upload_timeout: float = 10.0
    backoff_base: float = 30.0
    backoff_cap: float = 1800.0
    rng: random.Random = field(default_factory=random.Random)
    wall: Callable[[], float] = time.time
    strict: bool = False
    """Raise on an event that breaks the schema (tests) instead of counting it."""
    post: Post = http.post


def app_info(mode: str) -> dict[str, str]:
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, "other")
    version = "".join(c if c.isalnum() or c in ".+_-" else "-" for c in __version__)[:32]
    return {
        "version": version or "0",
        "platform": system,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "stack": "py-libp2p-0.8.1",
        "mode": mode,
    }


class TelemetryClient:
    def __init__(
        self, settings: TelemetrySettings, db: AsyncStore, options: ClientOptions | None = None
    ) -> None:
        self.settings = settings
        self.options = options or ClientOptions()
        self._db = db
        level = settings.level if settings.enabled else "off"
        self.recorder = Recorder(level, wall=self.options.wall, monotonic=trio.current_time)
        self.session_id = identifiers.new_id()
        period = self.options.upload_period
        self.schedule = UploadSchedule(
            trio.current_time(),
            period=period,
            jitter=period / 6,
            base=self.options.backoff_base,
            cap=self.options.backoff_cap,
            online_spread=min(30.0, period / 2),
            rng=self.options.rng,
        )
        self.last_result: str | None = None
        self.batches_sent = 0
        self.bytes_sent = 0
        self._wake = trio.Event()
        self._started_ms = self.now_ms()

    @property
    def enabled(self) -> bool:
        return self.recorder.level != "off"

    def now_ms(self) -> int:
        return int(self.options.wall() * 1000)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Before the messenger records: a crashed session is closed (`unclean`), an opt-out
        since the last run deletes the queue, and this session starts."""
        state = await self._db.run(lambda store: store.telemetry_outbox.state())
        if not self.enabled:
            if state.get("install_id") or state.get("next_seq"):
                await self.opt_out()
            return
        self.recorder.paused = state.get("paused") == "1"
        previous = state.get("open_session")
        if previous:
            crashed = json.loads(previous)
            lasted = max(0, int(crashed.get("t", 0)) - int(crashed.get("start", 0))) // 1000
            self._record_as(
                crashed, "session_end", {"reason": "unclean", "duration_s": min(lasted, 10**8)}
            )
        self._started_ms = self.now_ms()
        self.recorder.record("session_start", {"mode": self.options.mode, "reason": "launch"})
        marker = self._marker()
        await self._db.run(lambda store: store.telemetry_outbox.set_state({"open_session": marker}))

    def _marker(self) -> str:
        """The running session as a crash would leave it: its start and last flush."""
        return outbox.dumps({"sid": self.session_id, "start": self._started_ms, "t": self.now_ms()})

    def _record_as(self, session: dict[str, Any], event_type: str, fields: dict[str, Any]) -> None:
        """An event of a past session (the crashed one's end), at its last known time."""
        before = len(self.recorder.pending)
        self.recorder.record(event_type, fields)
        if len(self.recorder.pending) > before:
            item = self.recorder.pending[-1]
            t = int(session.get("t", item.t))
            sid = session.get("sid")
            self.recorder.pending[-1] = dataclasses.replace(item, t=t, up_ms=0, sid=sid)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """The writer and the uploader, until cancelled; then a last flush and one short
        upload attempt."""
        await self.start()
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_loop)
                nursery.start_soon(self._upload_loop)
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await self.close()

    async def close(self) -> None:
        if not self.enabled:
            return
        duration = self.recorder.uptime_ms() // 1000
        self.recorder.record("session_end", {"reason": "quit", "duration_s": duration})
        await self.flush()
        await self._db.run(lambda store: store.telemetry_outbox.set_state({"open_session": None}))
        with trio.move_on_after(2):
            while await self.upload_once(http_timeout=2.0) in ("sent", "dry_run"):
                pass

    async def _write_loop(self) -> None:
        while True:
            await trio.sleep(self.options.flush_interval)
            await self.flush()

    async def _upload_loop(self) -> None:
        while True:
            delay = max(0.0, self.schedule.next_at - trio.current_time())
            with trio.move_on_after(delay):
                await self._wake.wait()
            self._wake = trio.Event()
            if self.schedule.due(trio.current_time()):
                await self.upload_once()

    def came_online(self) -> None:
        self.schedule.came_online(trio.current_time())
        self._wake.set()

    # -- the writer ------------------------------------------------------------------------
    async def flush(self) -> None:
        recorded, dropped = self.recorder.take()
        if not recorded and not dropped:
            return
        now_ms, caps, strict, sid = (
            self.now_ms(),
            self.options.caps,
            self.options.strict,
            self.session_id,
        )

        marker = self._marker()

        def write(store: Store) -> None:
            outbox.persist(
                store, recorded, dropped, session_id=sid, now_ms=now_ms, caps=caps, strict=strict
            )
            store.telemetry_outbox.set_state({"open_session": marker})

        # Shielded: once taken from the recorder the events exist nowhere else, and waiting
        # for the profile DB's worker is a checkpoint a shutdown would otherwise cancel.
        with trio.CancelScope(shield=True):
            await self._db.run(write)

    # -- the uploader ----------------------------------------------------------------------
    async def upload_once(self, http_timeout: float | None = None) -> str:
        """One batch (or a pending deletion request); returns what happened, as the view
        shows it: `sent`, `dry_run`, `empty`, `paused`, `http_<status>`, `unreachable`,
        `bad_answer` (a 200 that is not the collector's answer)."""
        result = await self._upload(http_timeout or self.options.upload_timeout)
        self.last_result = result
        now = trio.current_time()
        if result in ("sent", "dry_run", "empty", "paused", "off"):
            more = result in ("sent", "dry_run") and await self._db.run(
                lambda store: store.telemetry_outbox.totals()[0] > 0
            )
            self.schedule.succeeded(now, more_waiting=more)
        return result

    async def _upload(self, http_timeout: float) -> str:
        state = await self._db.run(lambda store: store.telemetry_outbox.state())
        if state.get("delete_request"):
            return await self._send_deletion(json.loads(state["delete_request"]), http_timeout)
        if not self.enabled:
            return "off"
        if self.recorder.paused:
            return "paused"
        caps = self.options.caps
        events = await self._db.run(lambda store: outbox.next_batch(store, caps))
        if not events:
            return "empty"
        install_id = state.get("install_id")
        token = state.get("token")
        dry_run = self.settings.dry_run
        if install_id is None or (token is None and dry_run is None):
            registered = await self._register(http_timeout)
            if registered is not None:
                return registered
            state = await self._db.run(lambda store: store.telemetry_outbox.state())
            install_id, token = state["install_id"], state.get("token")
        assert install_id is not None
        current = await self._db.run(outbox.status)
        batch_id = identifiers.new_id()
        body = outbox.batch_body(
            events,
            batch_id=batch_id,
            install_id=install_id,
            now_ms=self.now_ms(),
            app=app_info(self.options.mode),
            current=current,
        )
        seqs = [e.seq for e in events]
        if dry_run is not None:
            await trio.to_thread.run_sync(_append_line, dry_run, body)
            await self._finish(
                seqs,
                SentBatch(
                    batch_id, self.now_ms(), "dry_run", len(events), 0, 0, 0, len(body), body
                ),
            )
            return "dry_run"
        compressed = gzip.compress(body.encode())
        answer = await self._post("/v1/batch", compressed, token=token, http_timeout=http_timeout)
        counts = batch_counts(answer) if answer.status == 200 else None
        if answer.status == 200 and counts is None:
            # Not the collector's answer (a captive portal's page): the events stay queued.
            return await self._failed(answer, "bad_answer")
        if counts is not None:
            self.batches_sent += 1
            self.bytes_sent += len(compressed)
            await self._finish(
                seqs,
                SentBatch(
                    batch_id, self.now_ms(), "sent", len(events), *counts, len(compressed), body
                ),
            )
            return "sent"
        if answer.status == 401:
            # The collector forgot this install (deleted, or a new database): register again.
            await self._db.run(
                lambda store: store.telemetry_outbox.set_state({"install_id": None, "token": None})
            )
        return await self._failed(answer)

    async def _finish(self, seqs: list[int], batch: SentBatch) -> None:
        def done(store: Store) -> None:
            outbox.uploaded(store, seqs)
            store.telemetry_outbox.log_sent(batch)

        await self._db.run(done)

    async def _failed(self, answer: http.Answer, result: str | None = None) -> str:
        await self._db.run(outbox.upload_failed)
        delay = self.schedule.failed(trio.current_time(), answer.retry_after)
        if result is None:
            result = "unreachable" if answer.status == 0 else f"http_{answer.status}"
        log.info("telemetry upload: %s; next attempt in %.0f s", result, delay)
        return result

    async def _register(self, http_timeout: float) -> str | None:
        """Registers (or, for a dry run, makes up a local install id); None when done."""
        if self.settings.dry_run is not None:
            local = identifiers.new_id()
            await self._db.run(
                lambda store: store.telemetry_outbox.set_state({"install_id": local})
            )
            return None
        request: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        if self.settings.cohort is not None:
            request["cohort_code"] = self.settings.cohort
        answer = await self._post(
            "/v1/register", json.dumps(request).encode(), http_timeout=http_timeout
        )
        reply = answer.json() if answer.status == 201 else None
        if not isinstance(reply, dict) or not all(
            isinstance(reply.get(key), str) for key in ("token", "install_id")
        ):
            return await self._failed(answer)
        install_id, token = str(reply["install_id"]), str(reply["token"])
        await self._db.run(
            lambda store: store.telemetry_outbox.set_state(
                {"install_id": install_id, "token": token, "collector": self.settings.collector}
            )
        )
        return None

    async def _send_deletion(self, request: dict[str, str], http_timeout: float) -> str:
        collector = request.get("collector") or self.settings.collector
        if collector is None or not request.get("token"):
            await self._db.run(
                lambda store: store.telemetry_outbox.set_state({"delete_request": None})
            )
            return "deleted"
        answer = await self._post(
            "/v1/delete", b"{}", token=request["token"], http_timeout=http_timeout, base=collector
        )
        if deletion_acknowledged(answer):
            await self._db.run(
                lambda store: store.telemetry_outbox.set_state({"delete_request": None})
            )
            return "deleted"
        return await self._failed(answer)

    async def _post(
        self,
        path: str,
        body: bytes,
        *,
        token: str | None = None,
        http_timeout: float,
        base: str | None = None,
    ) -> http.Answer:
        base = base or self.settings.collector
        if base is None:
            return http.Answer(0)
        url = base + path
        post = self.options.post

        def call() -> http.Answer:
            return post(url, body, token=token, gzip=path == "/v1/batch", timeout=http_timeout)

        # A collector that never answers must not hold up shutdown: the thread is left to
        # its timeout. (mypy misreads run_sync's keyword after the variadic arguments.)
        return await trio.to_thread.run_sync(call, abandon_on_cancel=True)  # type: ignore[call-arg]

    # -- consent changes -------------------------------------------------------------------
    async def opt_out(self) -> None:
        """Stop recording, delete the queue and the sent log, forget the install (a new one if
        telemetry is turned on again) and queue the collector's deletion request."""
        self.recorder.set_level("off")
        self.recorder.take()
        await self._db.run(opt_out)
        with trio.move_on_after(5):
            await self.upload_once(http_timeout=5.0)

    async def set_paused(self, paused: bool) -> None:
        """Pause stops recording and sending; a resume starts counting again as a new session,
        so the collector sees the pause as a gap in coverage, not as silence."""
        resumed = self.recorder.paused and not paused
        self.recorder.paused = paused
        if resumed:
            self.recorder.record("session_start", {"mode": self.options.mode, "reason": "resume"})
        value = "1" if paused else None
        await self._db.run(lambda store: store.telemetry_outbox.set_state({"paused": value}))


def batch_counts(answer: http.Answer) -> tuple[int, int, int] | None:
    """Accepted, duplicate and rejected from the collector's answer to a batch; None when the
    answer is not one."""
    result = answer.json()
    if not isinstance(result, dict):
        return None
    accepted, duplicate = result.get("accepted"), result.get("duplicate")
    rejected = result.get("rejected")
    if not isinstance(accepted, int) or not isinstance(duplicate, int):
        return None
    if not isinstance(rejected, list):
        return None
    return accepted, duplicate, len(rejected)


def deletion_acknowledged(answer: http.Answer) -> bool:
    """The collector's answer to `/v1/delete` (a page that says 200 is not one), or 401: the
    collector no longer knows the install, so it holds nothing of it."""
    if answer.status == 401:
        return True
    result = answer.json()
    return answer.status == 200 and isinstance(result, dict) and "deleted" in result


def opt_out(store: Store) -> None:
    """The local half of opting out (also what `chinwag telemetry off` does offline)."""
    repo = store.telemetry_outbox
    state = repo.state()
    with store.db.transaction():
        repo.clear()
        request = None
        if state.get("token") and state.get("install_id"):
            request = outbox.dumps(
                {
                    "install_id": state["install_id"],
                    "token": state["token"],
                    "collector": state.get("collector", ""),
                }
            )
        # The person's recorded choice stays (chat/telemetry/client/profile.py).
        keys: dict[str, str | None] = {key: None for key in state if key != "consent"}
        keys["delete_request"] = request or state.get("delete_request")
        repo.set_state(keys)


def _append_line(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write(body + "\n")
