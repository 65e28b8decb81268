"""Telemetry from a light client on real nodes over loopback: its sessions and batches say
`light`, its sends go by light push (with the relay peers the service node reached), what
it receives comes by filter, and its heartbeats count the filter subscriptions it holds."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from harness.collector import running_collector
from harness.fast import FAST
from harness.light_network import LightNet, light_node, light_ready
from harness.live_groups import befriend, sent
from harness.telemetry_client import Uplink, fast_options, settings_for, start_reporting
from harness.waiting import wait_until

from chat.direct import conversation_content_topic
from chat.telemetry.collector.app import CollectorConfig

pytestmark = pytest.mark.slow


def events_of(uplink: Uplink, kind: str) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path, body in uplink.sent:
        if path == "/batch":
            for event in json.loads(body)["events"]:
                if event["type"] == kind:
                    found[event["id"]] = event
    return list(found.values())


def modes_of_batches(uplink: Uplink) -> set[str]:
    return {json.loads(body)["app"]["mode"] for path, body in uplink.sent if path == "/batch"}


async def test_a_light_client_reports_light_mode_light_push_filter_and_its_subscriptions(
    light_net: LightNet, tmp_path: Path
) -> None:
    await light_net.start_services()
    ups = {"lena": Uplink(), "rob": Uplink()}
    config = CollectorConfig(open_registration=True)
    async with running_collector(f"sqlite:///{tmp_path / 'collector.sqlite'}", config) as running:
        sides = {
            name: await start_reporting(
                light_net.nursery,
                light_net.store_for(name),
                replace(FAST, peers=light_net.service_addrs(), light=light),
                settings_for(running.url),
                fast_options(ups[name]),
            )
            for name, light in (("lena", True), ("rob", False))
        }
        lena, rob = sides["lena"].messenger, sides["rob"].messenger
        await befriend(lena, rob)
        await wait_until(lambda: light_ready(lena))
        chat_id = next(c.id for c in await lena.chats() if c.kind == "direct")
        topic = conversation_content_topic(chat_id)
        core = light_node(lena).filter.core

        def chat_held_on_two() -> bool:
            held = [p for p in core.active_peers if any(c[1] == topic for c in core.held_by(p))]
            return len(held) >= 2

        await wait_until(chat_held_on_two, 30)
        await lena.send_text(chat_id, "from the light client")
        for n in range(3):
            await rob.send_text(chat_id, f"from the relay client {n}")

        async def both_delivered() -> bool:
            mine = [*(await sent(lena, chat_id)), *(await sent(rob, chat_id))]
            return len(mine) == 4 and all(m.state == "delivered" for m in mine)

        await wait_until(both_delivered, 60)
        for side in sides.values():
            await side.stop()

    assert {e["mode"] for e in events_of(ups["lena"], "session_start")} == {"light"}
    assert modes_of_batches(ups["lena"]) == {"light"} and modes_of_batches(ups["rob"]) == {"relay"}
    [pushed] = events_of(ups["lena"], "msg_sent")
    assert pushed["path"] == "lightpush" and pushed["peers_used"] >= 1, pushed
    relayed = events_of(ups["rob"], "msg_sent")
    assert all(e["path"] == "relay" and e["peers_used"] >= 1 for e in relayed), relayed
    # The first copy counts: filter's push, or a store scan that came first (both real).
    lena_via = [e["via"] for e in events_of(ups["lena"], "msg_recv")]
    assert len(lena_via) == 3 and "filter" in lena_via and set(lena_via) <= {"filter", "store"}
    assert [e["via"] for e in events_of(ups["rob"], "msg_recv")] == ["relay"]
    beats = events_of(ups["lena"], "heartbeat")
    assert max(b["filter_subs"] for b in beats) >= 2  # at least one topic on two nodes
