"""Bad input at the collector, over real HTTP on SQLite and PostgreSQL: each is answered with
the right status and a sentence, nothing is half-stored, and other installs are unaffected.
Also deletion on request, retention per table, /metrics, and that no address is stored."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from harness.collector import RunningCollector, days_ago, now_ms, running_collector
from harness.telemetry import DAY_MS, HOUR_MS, FakeInstall, conversation, gzip_json
from sqlalchemy import select

from chat.telemetry.collector import tables
from chat.telemetry.collector.app import CollectorConfig
from chat.telemetry.collector.limits import CollectorLimits


def _events(install: FakeInstall, n: int, t: int | None = None) -> list[dict[str, object]]:
    start = t if t is not None else now_ms() - HOUR_MS
    return [install.heartbeat(start + k) for k in range(n)]


async def test_malformed_bodies_are_400_and_store_nothing(db_url: str) -> None:
    async with running_collector(db_url) as collector:
        alice = await collector.register()
        not_json = await collector.post_batch(alice.token, b"{not json", gzip=False)
        not_gzip = await collector.post_batch(alice.token, b"plain bytes", gzip=True)
        cut = gzip_json(alice.batch(_events(alice, 3), sent_at=now_ms()))[:-12]
        truncated = await collector.post_batch(alice.token, cut, gzip=True)
        not_object = await collector.post_batch(alice.token, b"[1, 2]", gzip=False)
        nan = await collector.post_batch(alice.token, b'{"events": NaN}', gzip=False)
        rows = collector.rows()

    assert [r.status_code for r in (not_json, not_gzip, truncated, nan)] == [400] * 4
    assert not_gzip.json()["error"] == "the body is not valid gzip."
    assert not_object.status_code == 422
    assert "must be a JSON object" in not_object.json()["error"]
    assert rows["events"] == 0 and rows["batches"] == 0


async def test_oversized_bodies_are_413_before_they_are_read_or_inflated(db_url: str) -> None:
    async with running_collector(db_url) as collector:
        alice = await collector.register()
        big = await collector.post_batch(alice.token, b"x" * (1024 * 1024 + 1), gzip=False)
        # A gzip bomb: 64 MB of zeros in ~64 KB; inflated no further than the 4 MB bound.
        bomb = gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)
        inflated = await collector.post_batch(alice.token, bomb, gzip=True)
        fine = await collector.upload(alice, _events(alice, 2))

    assert big.status_code == 413
    assert inflated.status_code == 413
    assert "uncompressed" in inflated.json()["error"]
    assert fine.json()["accepted"] == 2


async def test_envelope_errors_are_422_and_event_errors_are_listed_per_event(db_url: str) -> None:
    async with running_collector(db_url) as collector:
        alice = await collector.register()
        envelope = alice.batch(_events(alice, 2), sent_at=now_ms())
        envelope["note"] = "free text"
        unknown_field = await collector.post_batch(alice.token, gzip_json(envelope), gzip=True)
        events = _events(alice, 3)
        events[0]["t"] = now_ms() - 31 * DAY_MS  # too old
        events[1]["t"] = now_ms() + 2 * HOUR_MS  # in the future
        events[2]["text"] = "hello"  # an unknown field
        events.append(alice.heartbeat(now_ms() - 1000))
        mixed = await collector.upload(alice, events)
        rows = collector.rows()

    assert unknown_field.status_code == 422
    assert "unknown field(s): note" in unknown_field.json()["error"]
    answer = mixed.json()
    assert answer["accepted"] == 1 and answer["duplicate"] == 0
    reasons = {r["index"]: r["reason"] for r in answer["rejected"]}
    assert "30 days in the past" in reasons[0]
    assert "an hour in the future" in reasons[1]
    assert "unknown field(s): text" in reasons[2]
    assert rows["events"] == 1


async def test_a_reused_seq_under_another_id_is_rejected(db_url: str) -> None:
    async with running_collector(db_url) as collector:
        alice = await collector.register()
        first = _events(alice, 2)
        await collector.upload(alice, first)
        clash = alice.heartbeat(now_ms() - 5000)
        clash["seq"] = first[0]["seq"]
        answer = (await collector.upload(alice, [clash])).json()

    assert answer["accepted"] == 0
    assert answer["rejected"][0]["reason"] == "this seq is already used by another event"


async def test_tokens_installs_and_cohort_codes_are_checked(db_url: str) -> None:
    config = CollectorConfig(cohorts={"wave1-code": "wave-1"})
    async with running_collector(db_url, config) as collector:
        no_code = await collector.client.post("/v1/register", json={"schema_version": 1})
        bad_code = await collector.client.post(
            "/v1/register", json={"schema_version": 1, "cohort_code": "guess"}
        )
        alice = await collector.register("wave1-code")
        bob = await collector.register("wave1-code")
        no_token = await collector.client.post("/v1/batch", content=b"{}")
        wrong_token = await collector.post_batch("nope", b"{}", gzip=False)
        other_install = bob.batch(_events(bob, 1), sent_at=now_ms())
        as_bob = await collector.post_batch(alice.token, gzip_json(other_install), gzip=True)
        with collector.engine.connect() as db:
            cohorts = {row.cohort for row in db.execute(select(tables.installs.c.cohort))}

    assert no_code.status_code == 403 and bad_code.status_code == 403
    assert no_token.status_code == 401 and wrong_token.status_code == 401
    assert no_token.headers["www-authenticate"].startswith("Bearer")
    assert as_bob.status_code == 403
    assert cohorts == {"wave-1"}


async def test_a_flooding_install_gets_429_and_the_others_are_unaffected(db_url: str) -> None:
    limits = CollectorLimits(batches_per_minute=6, burst=4, events_per_day=50)
    async with running_collector(db_url, CollectorConfig({}, True, limits)) as collector:
        flood = await collector.register()
        calm = await collector.register()
        statuses = [
            (await collector.upload(flood, _events(flood, 1))).status_code for _ in range(6)
        ]
        limited = await collector.upload(flood, _events(flood, 1))
        other = await collector.upload(calm, _events(calm, 40))
        over_cap = await collector.upload(calm, _events(calm, 11))
        last = _events(calm, 10)
        within_cap = await collector.upload(calm, last)
        # At the cap, a replay of stored events is still answered: duplicates do not count.
        replay = await collector.upload(calm, last)

    assert statuses[:4] == [200, 200, 200, 200]
    assert set(statuses[4:]) == {429}
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert other.json()["accepted"] == 40
    assert over_cap.status_code == 429 and "cap of 50 events" in over_cap.json()["error"]
    assert int(over_cap.headers["retry-after"]) <= 86_400
    assert within_cap.json()["accepted"] == 10
    assert replay.status_code == 200 and replay.json()["duplicate"] == 10


async def test_registration_is_rate_limited_per_address(db_url: str) -> None:
    limits = CollectorLimits(registration_source_burst=2, registrations_per_source_per_minute=1)
    async with running_collector(db_url, CollectorConfig({}, True, limits)) as collector:
        answers = [
            (await collector.client.post("/v1/register", json={"schema_version": 1})).status_code
            for _ in range(4)
        ]
    assert answers == [201, 201, 429, 429]


async def test_delete_removes_every_row_of_the_install_and_revokes_its_token(db_url: str) -> None:
    t0 = days_ago(1)
    async with running_collector(db_url) as collector:
        k_tel, conv = conversation(b"deleted group")
        alice = await collector.register()
        bob = await collector.register()
        alice_events = [
            alice.start(t0),
            alice.join(t0 + 1, conv),
            alice.sent(t0 + 2, k_tel, b"m", conv),
            alice.confirm(t0 + 3, k_tel, b"m", "store_seen"),
            alice.received(t0 + 4, k_tel, b"n", conv, lat_ms=5),
            alice.heartbeat(t0 + 5),
            alice.event("gap_detected", t0 + 6, conv_ref=conv, method="seq_gap", n_missing=1,
                        window_s=5),
        ]  # fmt: skip
        await collector.upload(alice, alice_events)
        await collector.upload(bob, [bob.start(t0), bob.heartbeat(t0 + 1)])
        before = collector.rows()
        deleted = await collector.client.post(
            "/v1/delete", headers={"Authorization": f"Bearer {alice.token}"}
        )
        after = collector.rows()
        again = await collector.upload(alice, [alice.heartbeat(t0 + 9)])

    assert deleted.status_code == 200
    assert all(before[name] > 0 for name in before)
    assert after == {
        **{name: 0 for name in before},
        "events": 2,
        "batches": 1,
        "installs": 1,
        "sessions": 1,
        "heartbeats": 1,
    }
    assert deleted.json()["deleted"]["events"] == len(alice_events)
    assert again.status_code == 401


@pytest.mark.parametrize("days", [31, 91])
async def test_retention_purges_each_table_by_its_age(db_url: str, days: int) -> None:
    t0 = days_ago(1)
    async with running_collector(db_url) as collector:
        k_tel, conv = conversation(b"old group")
        alice = await collector.register()
        events = [
            alice.start(t0),
            alice.join(t0 + 1, conv),
            alice.sent(t0 + 2, k_tel, b"m", conv),
            alice.confirm(t0 + 3, k_tel, b"m", "e2e_ack"),
            alice.received(t0 + 4, k_tel, b"n", conv, lat_ms=5),
            alice.heartbeat(t0 + 5),
            alice.event("gap_recovered", t0 + 6, conv_ref=conv, n=1, via="store", after_ms=9),
        ]
        await collector.upload(alice, events)
        purged = collector.app.store.purge(now_ms() + days * DAY_MS)
        after = collector.rows()

    raw = {"events": 0, "batches": 0}
    projections = {t.name: 0 if days > 90 else 1 for t in tables.PROJECTIONS}
    assert after == {**raw, **projections, "installs": 1}
    assert purged["events"] == len(events) and purged["batches"] == 1


async def test_metrics_schema_and_health_answer_and_no_address_is_stored(db_url: str) -> None:
    async with running_collector(db_url) as collector:
        alice = await collector.register()
        await collector.upload(alice, _events(alice, 3))
        await collector.post_batch(alice.token, b"{", gzip=False)
        metrics = await collector.client.get("/metrics")
        schema_answer = await collector.client.get("/v1/schema")
        health = await collector.client.get("/healthz")
        wrong_method = await collector.client.get("/v1/batch")
        nowhere = await collector.client.get("/v1/nowhere")
        dumped = _dump(collector)

    text = metrics.text
    assert 'chinwag_collector_events_total{outcome="accepted"} 3' in text
    assert 'chinwag_collector_requests_total{route="/v1/batch",status="400"} 1' in text
    assert "chinwag_collector_installs 1" in text
    assert schema_answer.json()["schema_versions"] == [1]
    assert health.json() == {"ok": True}
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert nowhere.status_code == 404
    assert "127.0.0.1" not in dumped and alice.token not in dumped


def _dump(collector: RunningCollector) -> str:
    """Every value of every table, as text."""
    parts: list[str] = []
    with collector.engine.connect() as db:
        for table in tables.metadata.sorted_tables:
            parts.extend(json.dumps([str(v) for v in row]) for row in db.execute(select(table)))
    return "\n".join(parts)


def test_the_gzip_bound_holds_without_a_server() -> None:
    """The bounded inflate on its own: a valid small body passes, a bomb stops at the bound."""
    from chat.api.protocol import ApiError
    from chat.telemetry.collector.app import gunzip_bounded

    assert gunzip_bounded(gzip.compress(b"abc"), 10) == b"abc"
    with pytest.raises(ApiError) as caught:
        gunzip_bounded(gzip.compress(b"0" * 10_000), 100)
    assert caught.value.status == 413
    with pytest.raises(ApiError):
        gunzip_bounded(zlib.compress(b"abc"), 10)  # zlib, not gzip


async def test_a_database_that_goes_away_is_503_with_retry_after(postgres_server: object) -> None:
    """PostgreSQL only: the database is dropped under the running collector."""
    import psycopg
    from harness.postgres import PostgresServer

    if not isinstance(postgres_server, PostgresServer):
        pytest.skip(str(postgres_server))
    url = postgres_server.new_database()
    async with running_collector(url) as collector:
        alice = await collector.register()
        assert (await collector.upload(alice, _events(alice, 2))).status_code == 200
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as db:
            db.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        answer = await collector.upload(alice, _events(alice, 2))
        health = await collector.client.get("/healthz")
        metrics = (await collector.client.get("/metrics")).status_code

    assert answer.status_code == 503 and answer.headers["retry-after"] == "30"
    assert "database is unavailable" in answer.json()["error"]
    assert health.status_code == 503
    assert metrics == 503


async def test_the_report_is_served_to_the_report_token_only(db_url: str) -> None:
    token = "report-token-0123456789"
    config = CollectorConfig(open_registration=True, report_token=token)
    t0 = days_ago(2)
    async with running_collector(db_url, config) as collector:
        k_tel, conv = conversation(b"served group")
        alice = await collector.register()
        bob = await collector.register()
        await collector.upload(alice, [alice.join(t0, conv), alice.sent(t0 + 5, k_tel, b"m", conv)])
        await collector.upload(
            bob, [bob.join(t0, conv), bob.received(t0 + 9, k_tel, b"m", conv, 4)]
        )
        operator = {"Authorization": f"Bearer {token}"}
        as_json = await collector.client.get("/v1/report", headers=operator)
        as_html = await collector.client.get("/v1/report?format=html", headers=operator)
        wrong_day = await collector.client.get("/v1/report?from=soon", headers=operator)
        as_install = await collector.client.get(
            "/v1/report", headers={"Authorization": f"Bearer {alice.token}"}
        )
    async with running_collector(db_url) as plain:
        not_served = await plain.client.get("/v1/report", headers=operator)

    assert as_json.status_code == 200
    assert as_json.json()["overall"]["delivered"] == 1
    assert as_html.headers["content-type"].startswith("text/html")
    assert "<svg" in as_html.text
    assert wrong_day.status_code == 400
    assert as_install.status_code == 401
    assert not_served.status_code == 404


async def test_the_serving_collector_runs_the_retention_job_at_start(db_url: str) -> None:
    import trio
    from harness.waiting import wait_until

    from chat.telemetry import schema
    from chat.telemetry.collector.service import retention_job
    from chat.telemetry.collector.store import Install

    async with running_collector(db_url) as collector:
        alice = await collector.register()
        [install_id] = [alice.install_id]
        old = alice.batch(_events(alice, 4), sent_at=now_ms())
        # Stored as if it had arrived 40 days ago (the store takes the arrival time).
        batch = schema.check_batch(old, now_ms=now_ms())
        collector.app.store.ingest(Install(install_id, "open"), batch, now_ms() - 40 * DAY_MS)
        await collector.upload(alice, _events(alice, 2))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(retention_job, collector.app)
            await wait_until(
                lambda: "events" in collector.app.metrics.purged, 20, what="the first purge"
            )
            nursery.cancel_scope.cancel()
        rows = collector.rows()
        metrics = (await collector.client.get("/metrics")).text

    assert collector.app.metrics.purged["events"] == 4
    assert rows["events"] == 2 and rows["batches"] == 1
    assert 'chinwag_collector_purged_rows_total{table="events"} 4' in metrics
