"""The telemetry client's sans-IO core: consent settings, the recorder, the upload schedule,
and the outbox's rules on a real SQLCipher profile."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from chat.config import parse_config_text
from chat.errors import ConfigError
from chat.telemetry import identifiers, outbox, schema
from chat.telemetry.client.service import app_info, opt_out
from chat.telemetry.recorder import Recorded, Recorder
from chat.telemetry.schedule import UploadSchedule
from chat.telemetry.settings import (
    LEVELS,
    SettingsError,
    TelemetrySettings,
    allowed_types,
    apply_environment,
)
from storage.store import Store

NOW_MS = 1_800_000_000_000


def config(text: str) -> TelemetrySettings:
    return parse_config_text(text, config_file=Path("c.toml"), data_dir=Path("/d")).telemetry


# -- consent -------------------------------------------------------------------------------


def test_off_by_default_and_the_levels_match_the_schema() -> None:
    assert LEVELS == schema.LEVELS
    assert not config("").enabled
    assert allowed_types("off") == frozenset()
    assert allowed_types("health") == {"session_start", "session_end", "heartbeat", "error"}
    assert allowed_types("reliability") == set(schema.EVENT_TYPES)


def test_the_config_table_and_the_options_and_the_environment() -> None:
    table = config(
        '[telemetry]\nlevel = "health"\ncollector = "https://c.example/"\ncohort = "wave-1"\n'
    )
    assert table == TelemetrySettings("health", "https://c.example", "wave-1")
    chosen = table.with_options(level="reliability", cohort="wave-2")
    assert (chosen.level, chosen.cohort, chosen.enabled) == ("reliability", "wave-2", True)
    killed = apply_environment(chosen, {"CHINWAG_TELEMETRY": "off"})
    assert killed.forced_off and not killed.enabled
    assert apply_environment(chosen, {}).enabled
    with pytest.raises(SettingsError, match="can only be 'off'"):
        apply_environment(chosen, {"CHINWAG_TELEMETRY": "on"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[telemetry]\nlevel = "all"', "level must be one of"),
        ('[telemetry]\ncollector = "ftp://x"', "http:// or https://"),
        ('[telemetry]\ncohort = "has space"', "cohort must be"),
        ("[telemetry]\nsecret = 1", "unknown setting"),
        ("[telemetry]\nheartbeat_seconds = 0", "from 1 to 86400"),
        ('[telemetry]\nlevel = "health"\n[x]', "unknown setting"),
    ],
)
def test_bad_settings_are_sentences(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(text)


def test_a_level_needs_somewhere_to_send() -> None:
    with pytest.raises(SettingsError, match="needs a collector URL"):
        TelemetrySettings().with_options(level="health")
    assert TelemetrySettings().with_options(level="health", dry_run=Path("x")).enabled


# -- the recorder --------------------------------------------------------------------------


def recorder(level: str = "reliability", max_pending: int = 10) -> Recorder:
    clock = iter(range(1_000_000))
    return Recorder(
        level,
        wall=lambda: NOW_MS / 1000,
        monotonic=lambda: float(next(clock)),
        max_pending=max_pending,
    )


def test_the_level_decides_what_is_kept() -> None:
    health = recorder("health")
    assert not health.record("msg_recv", {})
    assert health.record("heartbeat", {})
    assert not recorder("off").record("heartbeat", {})
    paused = recorder()
    paused.paused = True
    assert not paused.record("heartbeat", {})


def test_a_full_memory_list_drops_and_counts_by_type() -> None:
    rec = recorder(max_pending=3)
    for _ in range(5):
        rec.record("msg_recv", {})
    rec.record("heartbeat", {})
    taken, dropped = rec.take()
    assert len(taken) == 3
    assert dropped == Counter({"msg_recv": 2, "heartbeat": 1})
    assert rec.take() == ([], Counter())


# -- the schedule --------------------------------------------------------------------------


def test_back_off_grows_to_its_cap_honours_retry_after_and_resets() -> None:
    schedule = UploadSchedule(0.0, rng=random.Random(1))
    assert 50 <= schedule.next_at <= 70
    ceilings = []
    for _ in range(12):
        ceilings.append(schedule.failed(0.0))
    assert all(0 <= d <= 1800 for d in ceilings)
    assert max(ceilings[6:]) > 300  # it grew past the first steps' 30, 60, 120 s
    assert schedule.failed(0.0, retry_after=3000) == 3000
    schedule.succeeded(10.0, more_waiting=True)
    assert schedule.next_at == 10.0 and schedule.failures == 0
    schedule.succeeded(10.0, more_waiting=False)
    schedule.came_online(20.0)
    assert 20.0 <= schedule.next_at <= 50.0


# -- the outbox ----------------------------------------------------------------------------


def recorded(kind: str = "heartbeat", t: int = NOW_MS, **fields: object) -> Recorded:
    if kind == "heartbeat" and not fields:
        fields = {
            "online_s": 300,
            "offline_s": 0,
            "peers": {"min": 1, "max": 2, "last": 2},
            "filter_subs": 0,
            "store": {"ok": 0, "fail": 0},
            "dial_fail": {},
            "msgs": {"sent": 1},
        }
    return Recorded(kind, t, 5, "online", fields)


SID = identifiers.new_id()


def test_persist_gives_gap_free_seqs_and_counts_schema_violations(store: Store) -> None:
    outbox.persist(
        store, [recorded(), recorded()], {}, session_id=SID, now_ms=NOW_MS, caps=outbox.Caps()
    )
    bad = recorded("error", component="ui", code="not-a-code")
    outbox.persist(
        store, [bad, recorded()], {"msg_recv": 4}, session_id=SID, now_ms=NOW_MS, caps=outbox.Caps()
    )
    events = store.telemetry_outbox.oldest(10)
    assert [e.seq for e in events] == [0, 1, 2]
    status = outbox.status(store)
    assert status.dropped == {"schema_violation": 1, "msg_recv": 4}
    assert status.queued == 3 and status.queued_bytes == sum(len(e.body) for e in events)
    with pytest.raises(schema.SchemaError):
        outbox.persist(
            store, [bad], {}, session_id=SID, now_ms=NOW_MS, caps=outbox.Caps(), strict=True
        )


def test_the_caps_purge_the_oldest_and_count_every_drop(store: Store) -> None:
    caps = outbox.Caps(max_events=5)
    then = NOW_MS - 15 * outbox.DAY_MS
    outbox.persist(store, [recorded(t=then)], {}, session_id=SID, now_ms=then, caps=caps)
    purged = outbox.persist(store, [recorded()] * 3, {}, session_id=SID, now_ms=NOW_MS, caps=caps)
    assert purged == Counter({"heartbeat": 1})  # 14 days is the longest an event waits
    outbox.persist(store, [recorded()] * 5, {}, session_id=SID, now_ms=NOW_MS, caps=caps)
    assert [e.seq for e in store.telemetry_outbox.oldest(10)] == [4, 5, 6, 7, 8]
    status = outbox.status(store)
    assert status.dropped == {"heartbeat": 4}
    assert status.queued == 5
    assert status.queued_bytes == sum(e.bytes for e in store.telemetry_outbox.oldest(10))
    small = outbox.Caps(max_bytes=2 * store.telemetry_outbox.oldest(1)[0].bytes)
    outbox.enforce_caps(store, small, NOW_MS)
    assert outbox.status(store).queued == 2


def test_over_a_cap_per_message_events_go_before_heartbeats(store: Store) -> None:
    caps = outbox.Caps(max_events=3)
    error = recorded("error", component="ui", code="other")
    outbox.persist(
        store, [recorded(), error, recorded(), error], {}, session_id=SID, now_ms=NOW_MS, caps=caps
    )
    assert [e.type for e in store.telemetry_outbox.oldest(10)] == [
        "heartbeat",
        "heartbeat",
        "error",
    ]
    outbox.persist(store, [recorded()] * 2, {}, session_id=SID, now_ms=NOW_MS, caps=caps)
    assert [e.type for e in store.telemetry_outbox.oldest(10)] == ["heartbeat"] * 3
    assert outbox.status(store).dropped == {"error": 2, "heartbeat": 1}


def test_a_batch_carries_the_stored_bytes_and_passes_the_collectors_checks(store: Store) -> None:
    outbox.persist(
        store, [recorded()] * 3, {"msg_sent": 2}, session_id=SID, now_ms=NOW_MS, caps=outbox.Caps()
    )
    events = outbox.next_batch(store, outbox.Caps(batch_events=2))
    assert len(events) == 2
    body = outbox.batch_body(
        events,
        batch_id=identifiers.new_id(),
        install_id=identifiers.new_id(),
        now_ms=NOW_MS,
        app=app_info("relay"),
        current=outbox.status(store),
    )
    for event in events:
        assert event.body in body
    batch = schema.check_batch(json.loads(body), now_ms=NOW_MS)
    assert not batch.rejected and len(batch.events) == 2
    assert batch.health["dropped_total"] == {"msg_sent": 2}
    assert batch.health["outbox_len"] == 3
    limited = outbox.next_batch(store, outbox.Caps(batch_bytes=1))
    assert len(limited) == 1  # at least one, even over the byte budget


def test_opting_out_clears_the_queue_and_keeps_a_deletion_request(store: Store) -> None:
    store.telemetry_outbox.set_state(
        {"install_id": "i", "token": "t", "next_seq": "3", "collector": "http://c"}
    )
    outbox.persist(store, [recorded()], {}, session_id=SID, now_ms=NOW_MS, caps=outbox.Caps())
    opt_out(store)
    assert outbox.status(store).queued == 0
    state = store.telemetry_outbox.state()
    assert set(state) == {"delete_request"}
    assert json.loads(state["delete_request"]) == {
        "install_id": "i",
        "token": "t",
        "collector": "http://c",
    }


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        (["--telemetry", "health"], {}, "needs a collector URL"),
        (["--telemetry", "health", "--collector", "ftp://x"], {}, "http:// or https://"),
        ([], {"CHINWAG_TELEMETRY": "yes"}, "can only be 'off'"),
    ],
)
def test_serve_refuses_bad_telemetry_options_in_one_sentence(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    options: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    from chat.cli import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["--data-dir", str(tmp_path), "serve", "--api", "0", *options])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("chinwag: ") and message in err


@pytest.mark.parametrize(
    ("table", "options"),
    [("", ["--telemetry", "health"]), ('[telemetry]\nlevel = "reliability"', [])],
    ids=["option", "config-file"],
)
def test_the_kill_switch_beats_a_level_without_a_collector(
    monkeypatch: pytest.MonkeyPatch, table: str, options: list[str]
) -> None:
    """CHINWAG_TELEMETRY=off beats every setting: a level with nowhere to send is not an
    error that stops `chinwag serve` then (telemetry is off)."""
    import argparse

    from chat.telemetry.client.options import add_telemetry_arguments, telemetry_settings

    parser = argparse.ArgumentParser()
    add_telemetry_arguments(parser)
    args = parser.parse_args(options)
    loaded = parse_config_text(table, config_file=Path("c.toml"), data_dir=Path("/d"))
    monkeypatch.setenv("CHINWAG_TELEMETRY", "off")
    settings = telemetry_settings(args, loaded)
    assert settings.forced_off and not settings.enabled
    monkeypatch.delenv("CHINWAG_TELEMETRY")
    with pytest.raises(ConfigError, match="needs a collector URL"):
        telemetry_settings(args, loaded)
