"""Telemetry batches as the collector reads them (chat/telemetry/collector/app.py, then
chat/telemetry/schema.py): a body from anyone with a token, gzip or not."""

from __future__ import annotations

import gzip
import json

from harness.telemetry import FakeInstall, conversation

from chat.api.protocol import ApiError
from chat.telemetry import schema
from chat.telemetry.collector.app import gunzip_bounded, parse_json
from fuzz.contract import Target, check

NOW_MS = 1_790_000_000_000


def fuzz_batch(data: bytes) -> None:
    try:
        raw = gunzip_bounded(data, schema.MAX_BATCH_BYTES) if data[:2] == b"\x1f\x8b" else data
        batch = schema.check_batch(parse_json(raw), now_ms=NOW_MS)
    except (ApiError, schema.SchemaError):
        return
    # What was accepted serializes to a batch that is accepted whole, with the same events.
    again = schema.check_batch(
        json.loads(
            json.dumps(
                schema.batch_json(
                    batch_id=batch.batch_id,
                    install_id=batch.install_id,
                    client_sent_at=batch.client_sent_at,
                    app=batch.app,
                    health=batch.health,
                    events=[e.to_json() for e in batch.events],
                )
            )
        ),
        now_ms=NOW_MS,
    )
    check(again.events == batch.events, "accepted events changed on a round trip")
    check(not again.rejected, "an accepted event was rejected on a round trip")
    check(len(batch.events) + len(batch.rejected) <= schema.MAX_EVENTS_PER_BATCH, "too many")


def _seeds() -> list[bytes]:
    install = FakeInstall("6a1c1d7e-58d5-4c38-9d53-3f4ddc9b6b10", "")
    k_tel, conv = conversation(b"fuzz group")
    events = [
        install.start(NOW_MS - 1000),
        install.join(NOW_MS - 900, conv),
        install.sent(NOW_MS - 800, k_tel, b"m", conv),
        install.received(NOW_MS - 700, k_tel, b"n", conv, lat_ms=3),
        install.heartbeat(NOW_MS - 600, sent=1),
    ]
    body = json.dumps(install.batch(events, sent_at=NOW_MS)).encode()
    return [body, gzip.compress(body), json.dumps({"events": []}).encode()]


TARGETS = (
    Target(
        name="telemetry_batch",
        decoder="chat.telemetry.collector.app.gunzip_bounded, parse_json, "
        "chat.telemetry.schema.check_batch",
        contract="ApiError (400/413) or SchemaError only; accepted events round-trip",
        fuzz=fuzz_batch,
        seeds=_seeds,
        max_len=8192,
        tokens=(b'"type"', b'"msg_sent"', b'"heartbeat"', b'"events"', b'"seq"', b'"app"'),
    ),
)
