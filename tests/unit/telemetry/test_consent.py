"""The person's telemetry choice on a real profile (chat/telemetry/client/profile.py): the
first-run question is asked only when nothing was chosen, nothing is forced and there is
somewhere to send to; the recorded choice beats the config file's level and survives
opting out; CHINWAG_TELEMETRY=off beats it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from chat.telemetry.client.profile import (
    ProfileTelemetry,
    record_choice,
    recorded_choice,
    with_recorded_choice,
)
from chat.telemetry.client.service import opt_out
from chat.telemetry.settings import TelemetrySettings
from storage.aio import AsyncStore
from storage.store import Store

COLLECTOR = TelemetrySettings(collector="http://127.0.0.1:9")


async def test_the_question_is_asked_only_when_it_means_something(store: Store) -> None:
    db = AsyncStore(store)
    assert not await ProfileTelemetry(TelemetrySettings(), db).needs_consent()  # nowhere to send
    assert await ProfileTelemetry(COLLECTOR, db).needs_consent()
    dry_run = TelemetrySettings(dry_run=Path("batches.jsonl"))
    assert await ProfileTelemetry(dry_run, db).needs_consent()
    forced = replace(COLLECTOR, forced_off=True)
    assert not await ProfileTelemetry(forced, db).needs_consent()
    configured = replace(COLLECTOR, level="health")  # the config file chose already
    assert not await ProfileTelemetry(configured, db).needs_consent()
    record_choice(store, "off")
    assert not await ProfileTelemetry(COLLECTOR, db).needs_consent()


async def test_the_recorded_choice_beats_the_config_file_and_outlives_opting_out(
    store: Store,
) -> None:
    db = AsyncStore(store)
    configured = replace(COLLECTOR, level="reliability")
    assert (await ProfileTelemetry(configured, db).effective()).level == "reliability"
    record_choice(store, "health")
    assert (await ProfileTelemetry(configured, db).effective()).level == "health"
    store.telemetry_outbox.set_state({"install_id": "i", "token": "t", "next_seq": "3"})
    opt_out(store)
    assert recorded_choice(store) == "health"  # opting out forgets the install, not the choice
    assert set(store.telemetry_outbox.state()) == {"consent", "delete_request"}
    store.telemetry_outbox.set_state({"consent": "maybe"})  # not a level: as if none
    assert recorded_choice(store) is None


async def test_turning_off_with_no_client_running_records_off_and_forgets_the_install(
    store: Store,
) -> None:
    """Nothing listens at the collector's address: the request waits for the next start."""
    db = AsyncStore(store)
    store.telemetry_outbox.set_state(
        {"install_id": "i", "token": "t", "collector": COLLECTOR.collector}
    )
    telemetry = ProfileTelemetry(replace(COLLECTOR, level="health"), db)
    assert not await telemetry.turn_off()
    assert recorded_choice(store) == "off"
    assert (await telemetry.effective()).level == "off"
    report = await telemetry.report()
    assert report.level == "off" and report.queued_events == 0 and not report.running


def test_serve_without_a_level_follows_the_recorded_choice(store: Store) -> None:
    configured = replace(COLLECTOR, level="reliability")
    assert with_recorded_choice(configured, store) == configured  # nothing chosen yet
    record_choice(store, "off")  # opted out in the chat screen
    assert not with_recorded_choice(configured, store).enabled
    record_choice(store, "health")
    assert with_recorded_choice(configured, store).level == "health"
    nowhere = TelemetrySettings()
    assert with_recorded_choice(nowhere, store) == nowhere  # no collector: nothing to follow
    forced = replace(configured, forced_off=True)
    assert not with_recorded_choice(forced, store).enabled
