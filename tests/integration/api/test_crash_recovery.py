"""The SIGKILL scenario, with real processes: a `chinwag node --store`, and Alice and Bob as
`chinwag serve`. Alice's process is killed (SIGKILL: no cleanup at all) right after her API
answered `queued` for a message; when the same profile starts again, the message goes out,
Bob gets it exactly once, and Alice sees it delivered. "Persist before the wire" is what
makes this work: the API answered only after the message and its outbox entry were
committed."""

from __future__ import annotations

import signal
from typing import Any

import httpx
import pytest
import trio
from harness.waiting import wait_until

DELIVERY_LIMIT = 90.0
"""Normally a few seconds; the bound allows for one acknowledgement re-send (60 s)."""


async def _state(http: httpx.AsyncClient, message_id: str) -> str:
    response = await http.get(f"/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    state: str = response.json()["state"]
    return state


@pytest.mark.slow
async def test_a_queued_message_survives_sigkill_and_is_delivered_after_restart(
    chinwag: Any,
) -> None:
    chinwag.create_profile("alice")
    chinwag.create_profile("bob")
    node = await chinwag.start_node()
    alice = await chinwag.serve("alice", node.addr)
    bob = await chinwag.serve("bob", node.addr)
    await node.wait_for_mesh(2)

    async with alice.client() as alice_http, bob.client() as bob_http:
        bob_link = (await bob_http.get("/v1/identity")).json()["contact_link"]
        alice_key = (await alice_http.get("/v1/identity")).json()["chat_key"]
        assert (await alice_http.post("/v1/contacts", json={"link": bob_link})).status_code == 202

        async def bob_has_the_request() -> bool:
            return bool((await bob_http.get("/v1/contacts")).json())

        await wait_until(bob_has_the_request)
        chat_id = (await bob_http.post(f"/v1/contacts/{alice_key}/accept")).json()["chat_id"]

        async def mutual() -> bool:
            contacts = (await alice_http.get("/v1/contacts")).json()
            return [c["state"] for c in contacts] == ["mutual"]

        await wait_until(mutual)
        sent = await alice_http.post(
            f"/v1/chats/{chat_id}/messages", json={"text": "written just before the crash"}
        )
        alice.process.stop(signal.SIGKILL)  # at once: before anything else happens
    assert sent.status_code == 202 and sent.json()["state"] == "queued"
    message_id = sent.json()["id"]
    assert await alice.process.wait() == -signal.SIGKILL

    alice = await chinwag.serve("alice", node.addr)  # the same profile, a new process
    async with alice.client() as alice_http, bob.client() as bob_http:
        # It is still there, and still ours to send.
        assert await _state(alice_http, message_id) in ("queued", "sent", "stored", "delivered")

        async def bob_got_it() -> bool:
            page = (await bob_http.get(f"/v1/chats/{chat_id}/messages")).json()
            return any(m["id"] == message_id for m in page)

        async def delivered() -> bool:
            return await _state(alice_http, message_id) == "delivered"

        with trio.fail_after(DELIVERY_LIMIT):
            await wait_until(bob_got_it, DELIVERY_LIMIT)
            await wait_until(delivered, DELIVERY_LIMIT)

        received = (await bob_http.get(f"/v1/chats/{chat_id}/messages")).json()
        assert [(m["id"], m["text"]) for m in received] == [
            (message_id, "written just before the crash")
        ]
        trace = (await alice_http.get(f"/v1/messages/{message_id}/trace")).json()
        states = [step["to_state"] for step in trace]
        assert states[0] == "queued" and states[-1] == "delivered", states
        assert (
            trace[-1]["evidence"]["ack_from"]
            == (await bob_http.get("/v1/identity")).json()["chat_key"]
        )
        assert (await alice_http.get("/v1/outbox")).json() == []

        # And the restarted API streams events as before.
        async with alice_http.stream("GET", "/v1/events") as response:
            assert await response.aiter_raw().__anext__() == b": connected\n\n"

    for served in (alice, bob):
        served.process.stop(signal.SIGTERM)
        assert await served.process.wait() == 0
        assert "Traceback" not in served.process.stderr
