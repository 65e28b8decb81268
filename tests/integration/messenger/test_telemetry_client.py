"""The telemetry client through real messengers on loopback, a real collector (HTTP,
SQLite) and its report: §8.10 of the design (docs/telemetry.md, "Tests that prove it").

Each messenger runs with its telemetry attached as `chinwag serve` attaches it; the client's
HTTP calls go through `Uplink`, which logs every body that left (the privacy checks read it)
and can lose the collector's answers (retries must not double count)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio
from harness.blackhole import Blackhole
from harness.collector import RunningCollector, now_ms, running_collector
from harness.fast import FAST
from harness.live_groups import group_of, texts
from harness.telemetry_client import Reporting, Uplink, fast_options, settings_for, start_reporting
from harness.waiting import wait_until

from chat.messenger import Messenger
from chat.telemetry import identifiers, outbox
from chat.telemetry.collector.app import CollectorConfig
from chat.telemetry.collector.limits import CollectorLimits
from chat.telemetry.outbox import Caps

from .conftest import Net

HOUR_MS = 3_600_000
Befriend = Callable[[Messenger, Messenger], Awaitable[str]]


@asynccontextmanager
async def collector(
    tmp_path: Path, limits: CollectorLimits | None = None
) -> AsyncIterator[RunningCollector]:
    config = CollectorConfig(open_registration=True, limits=limits or CollectorLimits())
    url = f"sqlite:///{tmp_path / 'collector.sqlite'}"
    async with running_collector(url, config) as running:
        yield running


async def reporting(
    net: Net, name: str, url: str, uplink: Uplink, caps: Caps | None = None
) -> Reporting:
    assert net.service is not None
    config = replace(FAST, peers=(net.service_addr(),))
    return await start_reporting(
        net.nursery, net.store_for(name), config, settings_for(url), fast_options(uplink, caps)
    )


def events_of(uplink: Uplink) -> list[dict[str, Any]]:
    found = []
    for path, body in uplink.sent:
        if path == "/batch":
            found += json.loads(body)["events"]
    return found


async def delivered(messenger: Messenger, chat_id: str, count: int) -> bool:
    page = await messenger.messages(chat_id)
    return sum(1 for m in page if m.outgoing and m.state == "delivered") >= count


def report(running: RunningCollector) -> dict[str, Any]:
    now = now_ms()
    return running.report(now - HOUR_MS, now + HOUR_MS)


async def test_delivery_is_reported_once_and_nothing_private_leaves(
    net: Net, befriend: Befriend, tmp_path: Path
) -> None:
    """Two installs chat; the collector matches sender and receiver (delivered, in real
    time); Alice's first answers are lost, so she uploads the same events again and they are
    counted once; no message text, chat key, topic, peer id or name leaves either client."""
    await net.start_service()
    alice_up, bob_up = Uplink(lose_answers=2), Uplink()
    async with collector(tmp_path) as running:
        alice = await reporting(net, "alice", running.url, alice_up)
        bob = await reporting(net, "bob", running.url, bob_up)
        chat_id = await befriend(alice.messenger, bob.messenger)
        texts = [f"MARKER-TEXT-{n}-telemetry" for n in range(3)]
        for text in texts:
            await alice.messenger.send_text(chat_id, text)
        await bob.messenger.send_text(chat_id, "MARKER-REPLY-telemetry")
        await wait_until(lambda: delivered(alice.messenger, chat_id, 3), 60)
        await wait_until(lambda: delivered(bob.messenger, chat_id, 1), 60)
        secrets = [
            *texts,
            "MARKER-REPLY",
            alice.messenger.identity().chat_key,
            bob.messenger.identity().chat_key,
            alice.messenger.identity().contact_link,
            "Alice",
            "Bob",
            chat_id,
            *(c.content_topic for c in alice.messenger._direct.conversations()),
            *(
                addr.rsplit("/p2p/", 1)[1]
                for m in (alice.messenger, bob.messenger)
                for addr in m.listen_addrs()
            ),
        ]
        for side in (alice, bob):
            await side.stop()
        assert alice_up.lost == 2
        rows = running.rows()
        report_now = report(running)

    overall = report_now["overall"]
    assert (overall["pairs"], overall["delivered"], overall["lost"]) == (4, 4, 0)
    assert overall["delivered_rt"] == 4
    # Retried uploads: the same event ids again, stored once.
    alice_events = events_of(alice_up)
    unique = {e["id"] for e in alice_events}
    assert len(alice_events) > len(unique)
    assert rows["events"] == len(unique) + len({e["id"] for e in events_of(bob_up)})
    sent = [e for e in alice_events if e["type"] == "msg_sent"]
    assert len({e["msg_ref"] for e in sent}) == 3
    # Privacy: on the bytes that left, hex and text forms alike.
    everything = alice_up.everything() + bob_up.everything()
    for secret in secrets:
        assert secret.encode() not in everything, secret
    health = report_now["telemetry"]
    assert health["seq_missing"] == 0 and health["client_dropped"] == {}
    # Heartbeats: the bandwidth meter's bytes, peers, and the message totals.
    beats = list({e["id"]: e for e in alice_events if e["type"] == "heartbeat"}.values())
    assert sum(b["bw"].get("relay", {}).get("out", 0) for b in beats) > 0
    assert sum(b["bw_kind"].get("chat", {}).get("n", 0) for b in beats) >= 3
    assert max(b["peers"]["max"] for b in beats) >= 1
    assert sum(b["msgs"]["sent"] for b in beats) == 3
    assert health["reconciliation"]["sent"]["reconciled"]


async def test_a_receiver_who_never_returns_is_unknown_not_lost(
    net: Net, befriend: Befriend, tmp_path: Path
) -> None:
    await net.start_service()
    alice_up, bob_up = Uplink(), Uplink()
    async with collector(tmp_path) as running:
        alice = await reporting(net, "alice", running.url, alice_up)
        bob = await reporting(net, "bob", running.url, bob_up)
        chat_id = await befriend(alice.messenger, bob.messenger)
        await bob.stop()  # Bob's install reported the conversation, then never came back
        for n in range(2):
            await alice.messenger.send_text(chat_id, f"into the void {n}")

        async def both_sent() -> bool:
            page = await alice.messenger.messages(chat_id)
            return sum(1 for m in page if m.outgoing and m.state != "queued") >= 2

        await wait_until(both_sent, 60)
        await alice.stop()
        overall = report(running)["overall"]
    assert (overall["pairs"], overall["delivered"], overall["lost"], overall["unknown"]) == (
        2,
        0,
        0,
        2,
    )


@pytest.mark.slow
async def test_a_blackholed_collector_loses_nothing_below_the_caps_and_reports_the_drops(
    net: Net, befriend: Befriend, tmp_path: Path
) -> None:
    """The collector unreachable (connections accepted, never answered) during a chat:
    every message is delivered, every event waits in the outbox with gap-free seqs; over
    the cap the oldest go and are counted; when the collector is back the queue drains in
    small batches within its rate limit (one a second, a burst of 2: a 429's `Retry-After`
    is waited out) and the report shows the drops."""
    await net.start_service()
    alice_up = Uplink()
    limits = CollectorLimits(batches_per_minute=60, burst=2)
    async with collector(tmp_path, limits) as running, trio.open_nursery() as nursery:
        hole = Blackhole(int(running.url.rsplit(":", 1)[1]))
        await nursery.start(hole.run)
        caps = Caps(max_events=25, batch_events=5)
        alice = await reporting(net, "alice", hole.url, alice_up, caps)
        bob = await reporting(net, "bob", running.url, Uplink())
        chat_id = await befriend(alice.messenger, bob.messenger)
        for n in range(12):
            await alice.messenger.send_text(chat_id, f"load {n}")
        await wait_until(lambda: delivered(alice.messenger, chat_id, 12), 60)
        await wait_until(lambda: hole.swallowed >= 2, 30)
        status = await alice.db.run(outbox.status)
        assert status.queued == 25  # the cap: older events went, counted
        assert sum(status.dropped.values()) == status.next_seq - 25
        assert status.dropped.get("msg_sent", 0) > 0 and "heartbeat" not in status.dropped
        hole.blackholed = False

        async def drained() -> bool:
            return (await alice.db.run(outbox.status)).queued == 0

        await wait_until(drained, 60)
        final = await alice.db.run(outbox.status)
        for side in (alice, bob):
            await side.stop()
        health = report(running)["telemetry"]
        nursery.cancel_scope.cancel()
    assert health["client_dropped"] == final.dropped
    # The heartbeats outlived the per-message events over the cap: their totals reconcile.
    assert health["reconciliation"]["sent"]["reconciled"], health["reconciliation"]
    batches = [a for a in alice_up.answers if a[2] == "/batch" and a[3].status != 0]
    assert len(batches) >= 5
    limited = [i for i, a in enumerate(batches) if a[3].status == 429]
    assert limited, "the catch-up never reached the rate limit"
    for i in limited:
        if i + 1 < len(batches):
            retry_after = batches[i][3].retry_after or 0
            assert batches[i + 1][0] >= batches[i][1] + retry_after - 0.05
    # The collector sees the same loss as gaps in the install's sequence numbers.
    assert health["seq_missing"] == sum(final.dropped.values())


@pytest.mark.slow
async def test_a_receiver_offline_then_catching_up_is_delivered_eventually_not_in_real_time(
    net: Net, befriend: Befriend, tmp_path: Path
) -> None:
    """Bob's app is closed while Alice writes; it starts 12 s later and gets the message
    from the store: the report counts it delivered, not delivered in real time (10 s). Both
    installs keep their sequence numbers across restarts, and Alice's restart does not
    report her send twice."""
    await net.start_service()
    alice_up, bob_up = Uplink(), Uplink()
    async with collector(tmp_path) as running:
        alice = await reporting(net, "alice", running.url, alice_up)
        bob = await reporting(net, "bob", running.url, bob_up)
        chat_id = await befriend(alice.messenger, bob.messenger)
        await bob.stop()
        net.stores.pop("bob").close()
        await alice.messenger.send_text(chat_id, "while you were away")

        await wait_until(lambda: any(e["type"] == "msg_sent" for e in events_of(alice_up)), 30)
        # Alice restarts too: her new session sees the message already sent, then delivered.
        await alice.stop()
        net.stores.pop("alice").close()
        alice = await reporting(net, "alice", running.url, alice_up)
        await trio.sleep(12)
        bob = await reporting(net, "bob", running.url, bob_up)

        async def arrived() -> bool:
            return any(not m.outgoing for m in await bob.messenger.messages(chat_id))

        await wait_until(arrived, 60)
        await wait_until(lambda: delivered(alice.messenger, chat_id, 1), 60)
        for side in (alice, bob):
            await side.stop()
        result = report(running)
    overall = result["overall"]
    assert (overall["pairs"], overall["delivered"], overall["delivered_rt"]) == (1, 1, 0)
    assert overall["lost"] == 0 and overall["latency_ms"]["p50"] >= 12_000
    # By event id: an upload cut at quit goes again at the next start (the same events).
    sends = list({e["id"]: e for e in events_of(alice_up) if e["type"] == "msg_sent"}.values())
    # Reported by the session that sent it; after the restart only a real new attempt is.
    assert len({e["msg_ref"] for e in sends}) == 1
    assert [e["attempt"] for e in sends] == sorted({e["attempt"] for e in sends})
    assert result["telemetry"]["reconciliation"]["sent"]["reconciled"], str(
        result["telemetry"]["reconciliation"]
    )
    seqs = [e["seq"] for e in events_of(bob_up)]
    assert sorted(set(seqs)) == list(range(len(set(seqs))))
    assert result["telemetry"]["seq_missing"] == 0


@pytest.mark.slow
async def test_a_group_is_matched_across_members_without_its_id_or_topic(
    net: Net, tmp_path: Path
) -> None:
    """Three installs in a group: one conversation reference on all of them, derived from
    the group's signed creation (not from its id, which its content topic shows), and every
    receiver matched to the sender's message."""
    await net.start_service()
    ups = {name: Uplink() for name in ("alice", "bob", "carol")}
    async with collector(tmp_path) as running:
        sides = {name: await reporting(net, name, running.url, up) for name, up in ups.items()}
        people = [side.messenger for side in sides.values()]
        group_id = await group_of(*people)
        await people[0].send_text(group_id, "MARKER-GROUP-telemetry")

        async def both_got_it() -> bool:
            return all(["MARKER-GROUP-telemetry" in await texts(p, group_id) for p in people[1:]])

        await wait_until(both_got_it, 60)
        for side in sides.values():
            await side.stop()
        overall = report(running)["overall"]
        by_kind = report(running)["by"]["conv_kind"]
    refs = {
        name: {e["conv_ref"] for e in events_of(up) if e["type"] == "conv_join"}
        for name, up in ups.items()
    }
    group_refs = refs["alice"] & refs["bob"] & refs["carol"]
    assert len(group_refs) == 1
    from_id = identifiers.conv_ref(identifiers.telemetry_key(b"group\n" + group_id.encode()))
    assert from_id not in group_refs
    assert overall["delivered"] >= 2 and overall["lost"] == 0
    assert by_kind["group"]["pairs"] == by_kind["group"]["delivered"] == 2
    everything = b"".join(up.everything() for up in ups.values())
    for secret in ("MARKER-GROUP", group_id, "Friends"):
        assert secret.encode() not in everything
