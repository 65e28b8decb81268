"""The telemetry client against a collector URL that leads somewhere else: a server that does
not speak HTTP, a captive portal's page, a JSON answer of the wrong shape. Nothing raises (an
exception here would end `chinwag serve`), nothing queued is lost, and an opt-out's deletion
request stays until a collector really acknowledged it."""

from __future__ import annotations

import pytest
import trio
from harness.canned_http import canned_http, http_answer

from chat.telemetry import outbox
from chat.telemetry.client.service import ClientOptions, TelemetryClient, opt_out
from chat.telemetry.settings import TelemetrySettings
from storage.aio import AsyncStore
from storage.store import Store

CAPTIVE_PORTAL = http_answer(200, b"<html><body>Sign in to the Wi-Fi</body></html>", "text/html")


async def registered_client(store: Store, url: str) -> tuple[TelemetryClient, AsyncStore]:
    db = AsyncStore(store)
    settings = TelemetrySettings(level="health", collector=url)
    client = TelemetryClient(settings, db, ClientOptions(strict=True))
    await client.start()
    await client.flush()
    await db.run(
        lambda s: s.telemetry_outbox.set_state({"install_id": "i" * 22, "token": "t" * 32})
    )
    return client, db


@pytest.mark.parametrize(
    "body",
    [
        CAPTIVE_PORTAL,
        http_answer(200, b"[1, 2]"),
        http_answer(200, b'{"accepted": "many"}'),
        http_answer(200, b'{"accepted": 1, "duplicate": 0, "rejected": 3}'),
    ],
    ids=["captive-portal", "json-list", "not-a-count", "rejected-not-a-list"],
)
async def test_a_batch_answer_of_the_wrong_shape_keeps_the_events(
    store: Store, body: bytes
) -> None:
    with canned_http(body) as server:
        client, db = await registered_client(store, server.url)
        queued = (await db.run(outbox.status)).queued
        assert queued > 0
        result = await client.upload_once(http_timeout=2.0)
    assert server.requests == 1
    assert result not in ("sent", "dry_run")
    assert (await db.run(outbox.status)).queued == queued


@pytest.mark.parametrize(
    "body",
    [CAPTIVE_PORTAL, http_answer(201, b'{"token": "abc"}'), http_answer(201, b"[]")],
    ids=["captive-portal", "no-install-id", "json-list"],
)
async def test_a_registration_answer_of_the_wrong_shape_is_a_failure(
    store: Store, body: bytes
) -> None:
    with canned_http(body) as server:
        db = AsyncStore(store)
        settings = TelemetrySettings(level="health", collector=server.url)
        client = TelemetryClient(settings, db, ClientOptions(strict=True))
        await client.start()
        await client.flush()
        result = await client.upload_once(http_timeout=2.0)
    assert result not in ("sent", "dry_run")
    state = await db.run(lambda s: s.telemetry_outbox.state())
    assert state.get("install_id") is None and state.get("token") is None


async def test_a_deletion_is_only_done_when_a_collector_acknowledged_it(store: Store) -> None:
    with canned_http(CAPTIVE_PORTAL) as server:
        client, db = await registered_client(store, server.url)
        await db.run(lambda s: s.telemetry_outbox.set_state({"collector": server.url}))
        await db.run(opt_out)
        with trio.fail_after(10):
            result = await client.upload_once(http_timeout=2.0)
    assert server.requests == 1
    assert result != "deleted"
    state = await db.run(lambda s: s.telemetry_outbox.state())
    assert state.get("delete_request")
