"""The telemetry client's service on a real profile and a real collector (HTTP, SQLite): it
registers and uploads, closes a crashed session as `unclean` at the next start, and opting
out (a start with level off) deletes the queue here and the install's rows there."""

from __future__ import annotations

import json
from pathlib import Path

import trio
import trio.lowlevel
from harness.collector import running_collector
from harness.waiting import wait_until

from chat.telemetry import outbox
from chat.telemetry.client.service import ClientOptions, TelemetryClient
from chat.telemetry.settings import TelemetrySettings
from storage.aio import AsyncStore
from storage.store import Store


def options() -> ClientOptions:
    return ClientOptions(flush_interval=0.05, upload_period=0.2, strict=True)


async def test_a_crash_is_reported_unclean_and_opting_out_deletes_both_sides(
    store: Store, tmp_path: Path
) -> None:
    db = AsyncStore(store)
    async with running_collector(f"sqlite:///{tmp_path / 'c.sqlite'}") as collector:
        settings = TelemetrySettings(level="health", collector=collector.url)
        crashed = TelemetryClient(settings, db, options())
        await crashed.start()
        await trio.sleep(0.5)  # time passes in the crashed session
        await crashed.flush()  # ...and it dies without `close`
        marker = json.loads((await db.run(lambda s: s.telemetry_outbox.state()))["open_session"])
        assert marker["sid"] == crashed.session_id

        client = TelemetryClient(settings, db, options())
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(client.run)
                await trio.lowlevel.checkpoint()

                async def uploaded() -> bool:
                    return client.batches_sent > 0 and (await db.run(outbox.status)).queued == 0

                await wait_until(uploaded, 10)
                scope.cancel()
        rows = collector.rows()
        assert rows["installs"] == 1 and rows["events"] == 4
        with collector.engine.connect() as conn:
            ends = conn.exec_driver_sql(
                "SELECT session_id, body FROM events WHERE type = 'session_end'"
            ).all()
        by_session = {sid: json.loads(body) for sid, body in ends}
        assert by_session[crashed.session_id]["reason"] == "unclean"
        assert by_session[crashed.session_id]["t"] >= marker["t"] - 1
        assert by_session[client.session_id]["reason"] == "quit"

        leaving = TelemetryClient(TelemetrySettings(), db, options())
        await leaving.start()
        assert leaving.last_result == "deleted"
        assert collector.rows()["installs"] == 0 and collector.rows()["events"] == 0
        assert await db.run(lambda s: s.telemetry_outbox.state()) == {}
        assert (await db.run(outbox.status)).queued == 0


async def test_a_pause_records_nothing_and_a_resume_starts_a_new_session(store: Store) -> None:
    db = AsyncStore(store)
    client = TelemetryClient(TelemetrySettings(level="health", collector="http://127.0.0.1:9/"),
                             db, options())  # fmt: skip
    await client.start()
    client.recorder.take()
    await client.set_paused(True)
    assert not client.recorder.record("heartbeat", {})
    assert (await db.run(lambda s: s.telemetry_outbox.state()))["paused"] == "1"
    await client.set_paused(False)
    taken, _ = client.recorder.take()
    assert [(event.type, event.fields["reason"]) for event in taken] == [
        ("session_start", "resume")
    ]
    assert "paused" not in await db.run(lambda s: s.telemetry_outbox.state())
