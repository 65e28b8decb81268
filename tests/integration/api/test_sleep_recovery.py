"""Issue 7's suspended laptop, with real processes: a `chinwag node --store`, and Alice and
Bob as `chinwag serve`. Bob's process is frozen with SIGSTOP for a full minute while Alice
writes to him; after SIGCONT he notices the gap (health `sleeping`), drops and rebuilds his
connections, catches up from the store, and is `online` again with every message exactly
once and in order, which Alice then sees `delivered`.

While Bob is frozen his event stream's TCP connection stays open; what he reports arrives
after SIGCONT, in order, so the stream opened before the freeze records the whole story."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import trio
from harness.waiting import wait_until

from chat.api.sse import parse_frames

FROZEN_FOR = 60.0
"""Issue 7 asks for a minute; real time, since the point is that the process misses it."""
MESSAGES = 10
LATE = 5.0
"""The last messages are sent this long before Bob wakes."""
RECOVERY_LIMIT = 30.0
"""From SIGCONT to online with everything caught up: normally a few seconds."""


@dataclass
class EventLog:
    """Bob's server-sent events as they arrive, with the test's clock at arrival."""

    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)

    def health_states(self, after: float = 0.0) -> list[str]:
        states = [d["health"]["status"] for t, kind, d in self.events
                  if kind == "health_updated" and t >= after]  # fmt: skip
        return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]

    def first_health(self, status: str, after: float) -> float | None:
        for at, kind, data in self.events:
            if kind == "health_updated" and at >= after and data["health"]["status"] == status:
                return at
        return None

    async def follow(self, http: httpx.AsyncClient, task_status: Any) -> None:
        async with http.stream("GET", "/v1/events", timeout=None) as response:
            assert response.status_code == 200
            task_status.started()
            rest = b""
            async for chunk in response.aiter_raw():
                frames, rest = parse_frames(rest + chunk)
                now = trio.current_time()
                self.events.extend((now, kind, json.loads(data)) for kind, data in frames)
                if frames:
                    self.changed.set()
                    self.changed = trio.Event()

    async def wait_for(self, status: str, after: float) -> float:
        while (at := self.first_health(status, after)) is None:
            await self.changed.wait()
        return at


async def _become_contacts(alice: httpx.AsyncClient, bob: httpx.AsyncClient) -> str:
    bob_link = (await bob.get("/v1/identity")).json()["contact_link"]
    alice_key = (await alice.get("/v1/identity")).json()["chat_key"]
    assert (await alice.post("/v1/contacts", json={"link": bob_link})).status_code == 202

    async def bob_has_the_request() -> bool:
        return bool((await bob.get("/v1/contacts")).json())

    await wait_until(bob_has_the_request)
    chat_id: str = (await bob.post(f"/v1/contacts/{alice_key}/accept")).json()["chat_id"]

    async def mutual() -> bool:
        contacts = (await alice.get("/v1/contacts")).json()
        return [c["state"] for c in contacts] == ["mutual"]

    await wait_until(mutual)
    return chat_id


async def _node_dropped_bob(node: Any) -> bool:
    return bool(await node.mesh_peers() < 2)


async def _online(http: httpx.AsyncClient) -> bool:
    return bool((await http.get("/v1/health")).json()["status"] == "online")


@pytest.mark.slow
async def test_a_client_frozen_for_a_minute_catches_up_everything_sent_meanwhile(
    chinwag: Any,
) -> None:
    chinwag.create_profile("alice")
    chinwag.create_profile("bob")
    node = await chinwag.start_node()
    alice = await chinwag.serve("alice", node.addr)
    bob = await chinwag.serve("bob", node.addr)
    await node.wait_for_mesh(2)
    texts = [f"message {i} while Bob sleeps" for i in range(MESSAGES)]
    log = EventLog()

    async with (
        alice.client() as alice_http,
        bob.client() as bob_http,
        bob.client() as bob_events,
        trio.open_nursery() as nursery,
    ):
        chat_id = await _become_contacts(alice_http, bob_http)
        await wait_until(lambda: _online(bob_http))
        await nursery.start(log.follow, bob_events)

        bob.process.stop(signal.SIGSTOP)
        frozen_at = trio.current_time()
        ids = []

        async def send(batch: list[str]) -> None:
            for text in batch:
                sent = await alice_http.post(f"/v1/chats/{chat_id}/messages", json={"text": text})
                assert sent.status_code == 202, sent.text
                ids.append(sent.json()["id"])

        async def all_stored() -> bool:
            states = [(await alice_http.get(f"/v1/messages/{i}")).json()["state"] for i in ids]
            return all(s == "stored" for s in states)

        # Spread over the minute as a conversation is. The first few are relayed into Bob's
        # socket buffer (he reads them after SIGCONT). The rest go once the node's keep-alive
        # has dropped him, so only the store has them; the last just before he wakes.
        await send(texts[:3])
        await wait_until(lambda: _node_dropped_bob(node), FROZEN_FOR - 20)
        await send(texts[3:7])
        await trio.sleep_until(frozen_at + FROZEN_FOR - LATE)
        await send(texts[7:])
        await wait_until(all_stored, LATE)  # the store node has them; Bob cannot ack
        await trio.sleep_until(frozen_at + FROZEN_FOR)
        bob.process.stop(signal.SIGCONT)
        resumed_at, resumed_wall = trio.current_time(), time.time()

        with trio.fail_after(RECOVERY_LIMIT):
            sleeping_at = await log.wait_for("sleeping", resumed_at)
            online_at = await log.wait_for("online", sleeping_at)

            async def bob_has_all() -> bool:
                page = (await bob_http.get(f"/v1/chats/{chat_id}/messages")).json()
                return len([m for m in page if not m["outgoing"]]) >= MESSAGES

            await wait_until(bob_has_all, RECOVERY_LIMIT)
            all_received_at = trio.current_time()

            async def all_delivered() -> bool:
                states = [(await alice_http.get(f"/v1/messages/{i}")).json()["state"]
                          for i in ids]  # fmt: skip
                return all(s == "delivered" for s in states)

            await wait_until(all_delivered, RECOVERY_LIMIT)
            all_delivered_at = trio.current_time()

        # Sleeping, then back online, and the catch-up that made it online is after the freeze.
        states = log.health_states(after=resumed_at)
        assert states[0] == "sleeping" and states[-1] == "online", states
        assert "offline" in states  # the reset dropped every connection from before the sleep
        health = (await bob_http.get("/v1/health")).json()
        assert health["status"] == "online", health
        assert health["last_catch_up"] is not None and health["last_catch_up"] >= resumed_wall

        # Every message exactly once, in the order Alice wrote them.
        page = (await bob_http.get(f"/v1/chats/{chat_id}/messages")).json()
        received = [(m["id"], m["text"]) for m in page if not m["outgoing"]]
        assert received == list(zip(ids, texts, strict=True))
        nursery.cancel_scope.cancel()

    print(
        f"SIGCONT -> sleeping {sleeping_at - resumed_at:.2f} s, -> online "
        f"{online_at - resumed_at:.2f} s, -> all {MESSAGES} received "
        f"{all_received_at - resumed_at:.2f} s, -> all delivered "
        f"{all_delivered_at - resumed_at:.2f} s; states {states}"
    )
    for served in (alice, bob):
        served.process.stop(signal.SIGTERM)
        assert await served.process.wait() == 0
        assert "Traceback" not in served.process.stderr
