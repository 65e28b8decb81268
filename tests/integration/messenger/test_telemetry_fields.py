"""The telemetry fields measured from the real message path (docs/telemetry.md): how a message
reached us (`msg_recv.via`), the peers a publish went to (`msg_sent.peers_used`), the
heartbeat's store answers and failed dials by cause, and the `gap_detected` /
`gap_recovered` / `error` events, on real messengers over loopback with a real collector."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from harness.collector import running_collector
from harness.fast import FAST
from harness.telemetry_client import Uplink, fast_options, settings_for, start_reporting
from harness.waiting import wait_until
from libp2p.peer.id import ID

from chat.direct import conversation_content_topic
from chat.messenger import Messenger
from chat.messenger.conversation import waku_message
from chat.telemetry.collector.app import CollectorConfig
from chat.waku.host import generate_node_key
from chat.waku.relay.faults import RelayFaults

from .conftest import Net

pytestmark = pytest.mark.slow
Befriend = Callable[[Messenger, Messenger], Awaitable[str]]
TAMPERED = 30


def events_of(uplink: Uplink, kind: str) -> list[dict[str, Any]]:
    """Events of one type that left, once each (a retried upload sends some again)."""
    found: dict[str, dict[str, Any]] = {}
    for path, body in uplink.sent:
        if path == "/batch":
            for event in json.loads(body)["events"]:
                if event["type"] == kind:
                    found[event["id"]] = event
    return list(found.values())


async def incoming(messenger: Messenger, chat_id: str) -> list[str]:
    return [m.text for m in await messenger.messages(chat_id) if not m.outgoing]


async def test_paths_peers_store_dials_gaps_and_errors_are_measured(
    net: Net, befriend: Befriend, free_port: Callable[[], int], tmp_path: Path
) -> None:
    """Bob is told of a peer where nothing listens (his dials are refused). Alice's first
    message is published while the service node's relay loses everything it forwards, so
    Bob first hears of it from her second message (a gap) and fetches it from the store
    (recovered via store); a tampered envelope is refused (an error event)."""
    faults = RelayFaults(0.0)
    await net.start_service(faults=faults)
    assert net.service is not None
    nobody = ID.from_pubkey(generate_node_key().public_key)
    dead = f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{nobody}"
    ups = {"alice": Uplink(), "bob": Uplink()}
    config = CollectorConfig(open_registration=True)
    async with running_collector(f"sqlite:///{tmp_path / 'collector.sqlite'}", config) as running:
        sides = {}
        for name, peers in (("alice", (net.service_addr(),)), ("bob", (net.service_addr(), dead))):
            sides[name] = await start_reporting(
                net.nursery,
                net.store_for(name),
                replace(FAST, peers=peers),
                settings_for(running.url),
                fast_options(ups[name]),
            )
        alice, bob = sides["alice"].messenger, sides["bob"].messenger
        chat_id = await befriend(alice, bob)
        await alice.send_text(chat_id, "by relay")
        await wait_until(lambda: _has(bob, chat_id, "by relay"), 30)

        faults.drop_rate = 1.0  # the service node forwards nothing; its store still keeps
        first = await alice.send_text(chat_id, "missed by relay")

        async def archived() -> bool:
            steps = await alice.trace(first.id)
            hashes = [bytes.fromhex(s.evidence["waku_hash"]) for s in steps if s.to_state == "sent"]
            assert net.service is not None
            return bool(hashes) and bool(net.service.archive.present(hashes[:1]))

        await wait_until(archived, 30)
        faults.drop_rate = 0.0
        await alice.send_text(chat_id, "names the missed one")
        await wait_until(lambda: _has(bob, chat_id, "missed by relay"), 60)

        # Tampered envelopes on the chat's topic, a burst of them: Bob refuses each; a few
        # are reported (ERRORS_PER_PERIOD per heartbeat), not the whole flood.
        assert alice.sessions is not None
        from chat.proto import direct_pb2

        for n in range(TAMPERED):
            good = alice.sessions.seal(
                bob.me.identity_key, direct_pb2.DirectPayload(sds_frame=b"x")
            )
            bad = dataclasses.replace(good, ciphertext=good.ciphertext[:-1] + bytes([n]))
            topic = conversation_content_topic(chat_id)
            message = waku_message(topic, bad.encode(), time.time() + n / 1000)
            alice.node.publish(alice.pubsub_topic, message)
        await wait_until(lambda: bob.rejected >= TAMPERED, 30)
        await wait_until(lambda: bob.telemetry_figures().dial_failures.get("refused", 0) >= 1, 30)
        for side in sides.values():
            await side.stop()

    sent = events_of(ups["alice"], "msg_sent")
    assert sent and all(e["path"] == "relay" for e in sent)
    assert all(e["peers_used"] >= 1 for e in sent), sent
    recv = {e["msg_ref"]: e["via"] for e in events_of(ups["bob"], "msg_recv")}
    assert len(recv) == 3
    assert "relay" in recv.values() and "store" in recv.values(), recv
    detected = events_of(ups["bob"], "gap_detected")
    recovered = events_of(ups["bob"], "gap_recovered")
    assert sum(e["n_missing"] for e in detected) == 1, detected
    assert [(e["n"], e["via"]) for e in recovered] == [(1, "store")], recovered
    assert detected[0]["conv_ref"] == recovered[0]["conv_ref"]
    refused = [e for e in events_of(ups["bob"], "error") if e["component"] == "node"]
    assert refused and all(e["code"] == "protocol" for e in refused), refused
    assert len(refused) < TAMPERED  # the budget per heartbeat period held
    beats = events_of(ups["bob"], "heartbeat")
    assert sum(b["store"]["ok"] for b in beats) >= 1
    assert sum(b["dial_fail"].get("refused", 0) for b in beats) >= 1
    assert all(b["filter_subs"] == 0 for b in beats)  # relay mode holds none
    assert {e["mode"] for e in events_of(ups["bob"], "session_start")} == {"relay"}


async def _has(messenger: Messenger, chat_id: str, text: str) -> bool:
    return text in await incoming(messenger, chat_id)
