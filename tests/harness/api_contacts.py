"""Two clients driven over their REST APIs (tests/integration/api's `api_net`) become
contacts, as a bot or a QA script would do it."""

from __future__ import annotations

from typing import Any

from harness.waiting import wait_until


async def befriend(alice: Any, bob: Any) -> str:
    """Alice asks Bob over the API, Bob accepts over the API; their chat id."""

    async def both_online() -> bool:
        health = [await c.call("GET", "/v1/health") for c in (alice, bob)]
        return all(sum(h["peers_per_shard"].values()) > 0 for h in health)

    await wait_until(both_online)
    bob_id = await bob.call("GET", "/v1/identity")
    alice_id = await alice.call("GET", "/v1/identity")
    sent = await alice.call(
        "POST", "/v1/contacts", json={"link": bob_id["contact_link"], "message": "hi, Alice"}
    )
    assert sent["chat_key"] == bob_id["chat_key"]
    assert sent["state"] == "request_sent" and sent["chat_id"] is None

    async def bob_has_the_request() -> bool:
        contacts = await bob.call("GET", "/v1/contacts")
        return any(c["chat_key"] == alice_id["chat_key"] for c in contacts)

    await wait_until(bob_has_the_request)
    [request] = await bob.call("GET", "/v1/contacts")
    assert request["state"] == "request_received" and request["intro"] == "hi, Alice"
    accepted = await bob.call("POST", f"/v1/contacts/{alice_id['chat_key']}/accept")
    assert accepted["state"] == "mutual" and accepted["chat_id"]

    async def alice_mutual() -> bool:
        return [c["state"] for c in await alice.call("GET", "/v1/contacts")] == ["mutual"]

    await wait_until(alice_mutual)
    chat_id: str = accepted["chat_id"]
    return chat_id
