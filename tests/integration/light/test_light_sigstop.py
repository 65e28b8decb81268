"""Issue 18's test 3 with real processes: two `chinwag node`s (store, filter, light push),
Alice as a relay `chinwag serve` and Bob as a light one (`serve --light`). Bob's process is
frozen with SIGSTOP for a minute while Alice writes 10 messages; after SIGCONT he has all
10, in order, once, and Alice sees them delivered."""

from __future__ import annotations

import signal
from typing import Any

import httpx
import pytest
import trio
from harness.processes import Chinwag
from harness.waiting import wait_until

FROZEN_FOR = 60.0
MESSAGES = 10
RECOVERY_LIMIT = 60.0


async def become_contacts(alice: httpx.AsyncClient, bob: httpx.AsyncClient) -> str:
    bob_link = (await bob.get("/v1/identity")).json()["contact_link"]
    alice_key = (await alice.get("/v1/identity")).json()["chat_key"]
    assert (await alice.post("/v1/contacts", json={"link": bob_link})).status_code == 202

    async def bob_has_the_request() -> bool:
        return bool((await bob.get("/v1/contacts")).json())

    await wait_until(bob_has_the_request, 30)
    chat_id: str = (await bob.post(f"/v1/contacts/{alice_key}/accept")).json()["chat_id"]

    async def mutual() -> bool:
        return [c["state"] for c in (await alice.get("/v1/contacts")).json()] == ["mutual"]

    await wait_until(mutual, 30)
    return chat_id


async def states(http: httpx.AsyncClient, ids: list[str]) -> list[str]:
    return [(await http.get(f"/v1/messages/{i}")).json()["state"] for i in ids]


@pytest.mark.slow
async def test_a_light_client_frozen_for_a_minute_has_all_ten_in_order_once(
    chinwag: Chinwag,
) -> None:
    chinwag.create_profile("alice")
    chinwag.create_profile("bob")
    services = ["--filter", "--lightpush"]
    first = await chinwag.start_node(extra=services)
    second = await chinwag.start_node(
        extra=[*services, "--peer", first.addr, "--node-key", str(chinwag.data_dir / "b.key"),
               "--archive", str(chinwag.data_dir / "b.sqlite")],
    )  # fmt: skip
    alice = await chinwag.serve("alice", first.addr, second.addr)
    bob = await chinwag.serve("bob", first.addr, second.addr, extra=["--light"])
    texts = [f"message {i} while Bob sleeps" for i in range(MESSAGES)]
    async with alice.client() as alice_http, bob.client() as bob_http:
        chat_id = await become_contacts(alice_http, bob_http)

        async def bob_light_and_held() -> bool:
            health: dict[str, Any] = (await bob_http.get("/v1/health")).json()
            # Receiving is what is tested: both filter subscriptions held. (A push node may
            # show as lost while it has no relay peer on the topic yet: that is honest.)
            return health["mode"] == "light" and health["light_line"].startswith("filter 2/2")

        await wait_until(bob_light_and_held, 60)
        bob.process.stop(signal.SIGSTOP)
        frozen_at = trio.current_time()
        ids: list[str] = []

        async def send(batch: list[str]) -> None:
            for text in batch:
                sent = await alice_http.post(f"/v1/chats/{chat_id}/messages", json={"text": text})
                assert sent.status_code == 202, sent.text
                ids.append(sent.json()["id"])

        await send(texts[:5])
        await trio.sleep_until(frozen_at + FROZEN_FOR / 2)
        await send(texts[5:])

        async def all_stored() -> bool:
            return all(s == "stored" for s in await states(alice_http, ids))

        await wait_until(all_stored, FROZEN_FOR / 2 - 5)
        await trio.sleep_until(frozen_at + FROZEN_FOR)
        bob.process.stop(signal.SIGCONT)

        async def bob_has_all() -> bool:
            page = (await bob_http.get(f"/v1/chats/{chat_id}/messages")).json()
            return len([m for m in page if not m["outgoing"]]) >= MESSAGES

        await wait_until(bob_has_all, RECOVERY_LIMIT)

        async def all_delivered() -> bool:
            return all(s == "delivered" for s in await states(alice_http, ids))

        await wait_until(all_delivered, RECOVERY_LIMIT)
        page = (await bob_http.get(f"/v1/chats/{chat_id}/messages")).json()
        received = [(m["id"], m["text"]) for m in page if not m["outgoing"]]
        assert received == list(zip(ids, texts, strict=True))  # all ten, in order, once
    for served in (alice, bob):
        served.process.stop(signal.SIGTERM)
        assert await served.process.wait() == 0
        assert "Traceback" not in served.process.stderr
