"""The scenarios of reference/telemetry.md §8.10 through the real collector (HTTP, SQLite and
PostgreSQL) and the report: batches crafted as the client sends them."""

from __future__ import annotations

from typing import Any

from harness.collector import RunningCollector, days_ago, now_ms, running_collector
from harness.telemetry import DAY_MS, HOUR_MS, MINUTE_MS, FakeInstall, conversation, gzip_json

SECOND_MS = 1000


async def _accepted(collector: RunningCollector, install: FakeInstall, events: list[Any]) -> None:
    response = await collector.upload(install, events)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": len(events), "duplicate": 0, "rejected": []}


def _window(t0: int) -> tuple[int, int]:
    return t0 - HOUR_MS, t0 + HOUR_MS


async def _group(collector: RunningCollector, t0: int, secret: bytes) -> Any:
    k_tel, conv = conversation(secret)
    alice = await collector.register()
    bob = await collector.register(mode="light")
    carol = await collector.register()
    joined = t0 - HOUR_MS + 1
    for install in (alice, bob, carol):
        install.pending = [install.start(joined - 1), install.join(joined, conv)]
    return k_tel, conv, alice, bob, carol


async def test_a_receiver_offline_for_30_minutes_is_delivered_eventually_not_in_real_time(
    db_url: str,
) -> None:
    t0 = days_ago(3)
    async with running_collector(db_url) as collector:
        k_tel, conv, alice, bob, carol = await _group(collector, t0, b"offline group")
        await _accepted(collector, alice, [*alice.pending, alice.sent(t0, k_tel, b"m1", conv)])
        carol_events = [
            *carol.pending,
            carol.received(t0 + 300, k_tel, b"m1", conv, lat_ms=300),
            carol.heartbeat(t0 + 4 * MINUTE_MS, recv=1),
            carol.heartbeat(t0 + DAY_MS + HOUR_MS),
        ]
        await _accepted(collector, carol, carol_events)
        # Bob's outage: heartbeats say offline; the message comes by store sync after it.
        bob_events = [
            *bob.pending,
            *(
                bob.heartbeat(t0 + k * 5 * MINUTE_MS, online_s=0, offline_s=300)
                for k in range(1, 7)
            ),
            bob.received(t0 + 31 * MINUTE_MS, k_tel, b"m1", conv, lat_ms=31 * 60_000, via="store"),
            bob.heartbeat(t0 + DAY_MS + HOUR_MS),
        ]
        await _accepted(collector, bob, bob_events)
        report = collector.report(*_window(t0))

    overall = report["overall"]
    assert (overall["pairs"], overall["delivered"], overall["lost"], overall["unknown"]) == (
        2,
        2,
        0,
        0,
    )
    assert overall["delivered_rt"] == 1
    assert overall["eventual_delivery_known"] == {
        "value": 1.0,
        "n": 2,
        "coverage": 1.0,
        "provisional": False,
    }
    # Real time while online: only Carol was online when m1 was sent; Bob's pair is not in it.
    assert overall["realtime_delivery_online"]["value"] == 1.0
    assert overall["realtime_delivery_online"]["n"] == 1
    assert overall["latency_ms"]["p99"] == 31 * MINUTE_MS
    assert report["by"]["mode"]["light"]["delivered_rt"] == 0
    assert report["by"]["mode"]["light"]["delivered"] == 1
    assert report["by"]["mode"]["relay"]["delivered_rt"] == 1


async def test_a_receiver_who_never_returns_is_unknown_not_lost(db_url: str) -> None:
    t0 = days_ago(3)
    async with running_collector(db_url) as collector:
        k_tel, conv, alice, bob, carol = await _group(collector, t0, b"gone group")
        await _accepted(collector, alice, [*alice.pending, alice.sent(t0, k_tel, b"m1", conv)])
        await _accepted(
            collector,
            carol,
            [
                *carol.pending,
                carol.received(t0 + 500, k_tel, b"m1", conv, lat_ms=500),
                carol.heartbeat(t0 + DAY_MS + HOUR_MS),
            ],
        )
        # Bob's last word came before the message; nothing after.
        await _accepted(collector, bob, [*bob.pending, bob.heartbeat(t0 - 10 * MINUTE_MS)])
        report = collector.report(*_window(t0))

    overall = report["overall"]
    assert (overall["delivered"], overall["lost"], overall["unknown"]) == (1, 0, 1)
    known = overall["eventual_delivery_known"]
    assert known == {"value": 1.0, "n": 1, "coverage": 0.5, "provisional": True}
    assert overall["eventual_delivery_lower_bound"] == {"value": 0.5, "n": 2}


async def test_a_message_every_receiver_missed_is_lost_which_the_relative_index_cannot_see(
    db_url: str,
) -> None:
    t0 = days_ago(3)
    async with running_collector(db_url) as collector:
        k_tel, conv, alice, bob, carol = await _group(collector, t0, b"missed group")
        await _accepted(
            collector,
            alice,
            [
                *alice.pending,
                alice.sent(t0, k_tel, b"lost one", conv),
                alice.sent(t0 + MINUTE_MS, k_tel, b"m2", conv),
            ],
        )
        for receiver in (bob, carol):
            await _accepted(
                collector,
                receiver,
                [
                    *receiver.pending,
                    receiver.received(t0 + MINUTE_MS + 200, k_tel, b"m2", conv, lat_ms=200),
                    receiver.heartbeat(t0 + DAY_MS + 2 * HOUR_MS),
                ],
            )
        report = collector.report(*_window(t0))

    overall = report["overall"]
    assert (overall["pairs"], overall["delivered"], overall["lost"], overall["unknown"]) == (
        4,
        2,
        2,
        0,
    )
    assert overall["eventual_delivery_known"]["value"] == 0.5
    assert report["receiver_relative_index_biased"] == {"value": 1.0, "n": 2}


async def test_retried_uploads_are_counted_once(db_url: str) -> None:
    t0 = days_ago(2)
    async with running_collector(db_url) as collector:
        k_tel, conv, alice, bob, _carol = await _group(collector, t0, b"retry group")
        never_out = alice.sent(t0 + 1, k_tel, b"m2", conv, result="no_peers")
        events = [*alice.pending, alice.sent(t0, k_tel, b"m1", conv), never_out]
        batch_id = "6a1c1d7e-58d5-4c38-9d53-3f4ddc9b6b10"
        first = await collector.upload(alice, events, batch_id=batch_id)
        assert first.json() == {"accepted": 4, "duplicate": 0, "rejected": []}
        for _ in range(2):  # the same batch again (the answer was lost)
            again = await collector.upload(alice, events, batch_id=batch_id)
            assert again.json() == {"accepted": 0, "duplicate": 4, "rejected": []}
        # A new batch that repeats one event and adds one.
        more = [events[-1], alice.confirm(t0 + SECOND_MS, k_tel, b"m1", "store_seen")]
        mixed = await collector.upload(alice, more)
        assert mixed.json() == {"accepted": 1, "duplicate": 1, "rejected": []}
        receipt = [*bob.pending, bob.received(t0 + 100, k_tel, b"m1", conv, lat_ms=100)]
        for _ in range(2):
            await collector.upload(bob, receipt)
        rows = collector.rows()
        report = collector.report(*_window(t0))

    assert rows["events"] == 5 + 3
    assert rows["msg_sent"] == 2 and rows["msg_recv"] == 1 and rows["msg_confirm"] == 1
    assert rows["batches"] == 4  # one row per distinct batch id
    assert report["overall"]["sent"] == 1
    assert report["overall"]["send_accepted"] == {"value": 0.5, "n": 2}
    assert report["overall"]["pairs"] == 1  # m1 to Bob (Carol sent nothing); m2 never left
    assert report["overall"]["delivered"] == 1
    assert report["overall"]["send_confirmation"]["value"] == 1.0
    assert report["telemetry"]["seq_missing"] == 0


async def test_queue_overflow_drops_are_reported_and_reconcile_with_heartbeat_totals(
    db_url: str,
) -> None:
    t0 = days_ago(2)
    async with running_collector(db_url) as collector:
        k_tel, conv, alice, bob, _carol = await _group(collector, t0, b"overflow group")
        events = [*alice.pending]
        for number in range(15):
            if number % 3 == 2:
                alice.skip("msg_sent")  # the in-memory queue was full: counted, never stored
            else:
                events.append(alice.sent(t0 + number * SECOND_MS, k_tel, bytes([number]), conv))
        events.append(alice.heartbeat(t0 + 5 * MINUTE_MS, sent=15))
        # The outbox cap purged three stored events: their seqs are gone, the drop counted.
        alice.next_seq += 3
        alice.skip("error", 3)
        events.append(alice.heartbeat(t0 + 10 * MINUTE_MS))
        await _accepted(collector, alice, events)
        await _accepted(collector, bob, [*bob.pending, bob.heartbeat(t0 + DAY_MS + HOUR_MS)])
        report = collector.report(*_window(t0))

    health = report["telemetry"]
    assert health["client_dropped"] == {"error": 3, "msg_sent": 5}
    assert health["seq_missing"] == 3
    sent = health["reconciliation"]["sent"]
    assert sent == {
        "heartbeat_total": 15,
        "events": 10,
        "missing_events": 5,
        "reported_dropped": 5,
        "reconciled": True,
    }
    assert report["overall"]["sent"] == 10


async def test_clock_skew_is_corrected_per_install(db_url: str) -> None:
    """A receiver whose clock runs 10 minutes fast still shows a 400 ms delivery."""
    t0 = days_ago(2)
    skew = 10 * MINUTE_MS
    async with running_collector(db_url) as collector:
        k_tel, conv, alice, bob, carol = await _group(collector, t0, b"skew group")
        await _accepted(collector, alice, [*alice.pending, alice.sent(t0, k_tel, b"m1", conv)])
        bob_events = [
            *(dict(e, t=e["t"] + skew) for e in bob.pending),
            bob.received(t0 + skew + 400, k_tel, b"m1", conv, lat_ms=400),
        ]
        body = bob.batch(bob_events, sent_at=now_ms() + skew)
        answer = await collector.post_batch(bob.token, gzip_json(body), gzip=True)
        assert answer.json()["accepted"] == 3
        await _accepted(collector, carol, [*carol.pending])
        report = collector.report(*_window(t0))

    assert report["overall"]["latency_ms"]["p50"] is not None
    assert 400 <= report["overall"]["latency_ms"]["p50"] < 5_000
