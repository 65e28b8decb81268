"""Black-box test over a bad network (issue 7): a `chinwag node --store` and two `chinwag serve`
clients (Alice, Bob), each in its own network namespace. Each client reaches the service node
only over its own data link, a veth impaired with 1 s ± 100 ms delay and 30 % loss (tc netem,
or where the kernel has no sch_netem, the iptables + NFQUEUE fallback of
tests/harness/impairment.py). The test drives the clients' REST APIs over separate,
unimpaired management links from its own namespace (tests/harness/netns.py).

The scenario: a contact request and its acceptance, 20 messages each way, every one
`delivered` and received exactly once and in order; then Alice's data link is cut for 60 s:
her health says offline within 30 s, both write messages meanwhile (Bob's go to the service
node and its store, Alice's wait in her outbox), and after the link returns every message is
delivered, each once and in order, and her health is online again.

The impairment acts on each client's egress (see tests/harness/impairment.py for why that
is one side of the link, as netem on the client's device would be). Needs root and
namespaces; it skips with the reason where they are not allowed, or where neither tc netem
nor iptables can impair the link. Everything (namespaces, rules, delayer and chinwag
processes) is removed at the end whatever happened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from harness.impairment import LinkImpairment, Unavailable, impaired
from harness.netns import DATA_DEVICE, Star, namespaces_problem
from harness.processes import Chinwag, Served
from harness.waiting import WaitTimedOut, wait_until

BAD_LINK = LinkImpairment(delay_ms=1000, jitter_ms=100, loss_percent=30)
MESSAGES_EACH_WAY = 20
CUT_SECONDS = 60
OFFLINE_WITHIN = 30.0
DELIVERY_LIMIT = 240.0
"""Over this link one exchange takes seconds; and when the keep-alive drops a busy connection
(its pings time out behind queued data), an acknowledgement lost with it is found by the
next store scan (every 60 s) or answers the next re-send (after 60 s, then 120 s)."""


@pytest.fixture
def star() -> Any:
    problem = namespaces_problem()
    if problem:
        pytest.skip(problem)
    made = Star(clients=2)
    try:
        made.up()
        yield made
    finally:
        made.down()


async def _json(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Any:
    response = await http.request(method, url, **kwargs)
    assert response.is_success, f"{method} {url}: {response.status_code} {response.text}"
    return response.json()


def _tolerant(http_ok: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
    """The condition, false while the API does not answer (it is on an unimpaired link, so
    that passes: look again)."""

    async def tolerant() -> bool:
        try:
            return await http_ok()
        except httpx.TransportError:
            return False

    return tolerant


async def _messages(http: httpx.AsyncClient, chat_id: str) -> list[dict[str, Any]]:
    page: list[dict[str, Any]] = await _json(
        http, "GET", f"/v1/chats/{chat_id}/messages", params={"limit": 500}
    )
    return page


async def _all_through(
    sender: httpx.AsyncClient, sender_chat: str, recipient: httpx.AsyncClient,
    recipient_chat: str, sent: list[tuple[str, str]],
) -> None:  # fmt: skip
    """Every (id, text) in `sent` delivered, and the recipient has each once, in order."""
    ids = {message_id for message_id, _ in sent}

    async def delivered() -> bool:
        mine = await _messages(sender, sender_chat)
        return all(m["state"] == "delivered" for m in mine if m["id"] in ids)

    try:
        await wait_until(_tolerant(delivered), DELIVERY_LIMIT)
    except WaitTimedOut:
        mine = [m for m in await _messages(sender, sender_chat) if m["id"] in ids]
        late = next(m for m in mine if m["state"] != "delivered")
        trace = await _json(sender, "GET", f"/v1/messages/{late['id']}/trace")
        got = sum(m["id"] in ids for m in await _messages(recipient, recipient_chat))
        raise AssertionError(
            f"not all delivered within {DELIVERY_LIMIT} s: sender's states "
            f"{dict(Counter(m['state'] for m in mine))}, the recipient has {got} of {len(ids)}; "
            f"the trace of {late['text']!r}: {trace}"
        ) from None
    theirs = [m for m in await _messages(recipient, recipient_chat) if m["id"] in ids]
    assert [(m["id"], m["text"]) for m in theirs] == sent
    assert all(not m["outgoing"] and m["state"] == "received" for m in theirs)


async def _send(http: httpx.AsyncClient, chat_id: str, texts: list[str]) -> list[tuple[str, str]]:
    sent = []
    for text in texts:
        made = await _json(http, "POST", f"/v1/chats/{chat_id}/messages", json={"text": text})
        assert made["state"] == "queued", made
        sent.append((made["id"], text))
    return sent


async def _health(http: httpx.AsyncClient) -> str:
    status: str = (await _json(http, "GET", "/v1/health"))["status"]
    return status


@pytest.mark.slow
async def test_contact_and_messages_survive_a_slow_lossy_link_and_a_long_cut(
    star: Star, tmp_path: Path
) -> None:
    alice_ns, bob_ns = star.client
    service = Chinwag(tmp_path / "service", wrapper=star.service.wrapper,
                      http_host=star.service.management_ip)  # fmt: skip
    alice_box = Chinwag(tmp_path / "alice", host=alice_ns.data_ip, wrapper=alice_ns.wrapper,
                        http_host=alice_ns.management_ip)  # fmt: skip
    bob_box = Chinwag(tmp_path / "bob", host=bob_ns.data_ip, wrapper=bob_ns.wrapper,
                      http_host=bob_ns.management_ip)  # fmt: skip
    async with AsyncExitStack() as stack:
        for box in (service, alice_box, bob_box):
            stack.push_async_callback(box.close)
        links = []
        try:
            for ns in (alice_ns, bob_ns):
                links.append(await stack.enter_async_context(
                    impaired(ns.name, DATA_DEVICE, BAD_LINK, log_dir=tmp_path)
                ))  # fmt: skip
        except Unavailable as why:
            pytest.skip(str(why))

        node = await service.start_node(
            listen=[f"/ip4/{ns.service_ip}/tcp/0" for ns in star.client]
        )
        address_for = {
            ns.name: next(a for a in node.addrs if a.startswith(f"/ip4/{ns.service_ip}/"))
            for ns in star.client
        }
        alice_box.create_profile("alice")
        bob_box.create_profile("bob")
        alice = await alice_box.serve("alice", address_for[alice_ns.name])
        bob = await bob_box.serve("bob", address_for[bob_ns.name])
        await node.wait_for_mesh(2, limit=90)

        alice_http = await stack.enter_async_context(alice.client())
        bob_http = await stack.enter_async_context(bob.client())
        phases = await _scenario(star, alice, alice_http, bob_http)
    print(f"phases (s after both clients were in the mesh): {phases}")
    for link in links:  # the delayers have stopped and reported
        print(f"{link.backend}: {link.delayer_report.strip()}")


async def _scenario(
    star: Star, alice: Served, alice_http: httpx.AsyncClient, bob_http: httpx.AsyncClient
) -> dict[str, float]:
    """The scenario; how long its steps took (for the record, not asserted)."""
    alice_ns = star.client[0]
    started = trio.current_time()
    phases: dict[str, float] = {}

    def mark(phase: str) -> None:
        phases[phase] = round(trio.current_time() - started, 1)

    # The contact request, over the bad links.
    bob_link = (await _json(bob_http, "GET", "/v1/identity"))["contact_link"]
    alice_key = (await _json(alice_http, "GET", "/v1/identity"))["chat_key"]
    await _json(alice_http, "POST", "/v1/contacts", json={"link": bob_link})

    async def bob_has_the_request() -> bool:
        return bool(await _json(bob_http, "GET", "/v1/contacts"))

    await wait_until(_tolerant(bob_has_the_request), DELIVERY_LIMIT)
    bob_chat = (await _json(bob_http, "POST", f"/v1/contacts/{alice_key}/accept"))["chat_id"]

    async def mutual() -> bool:
        contacts = await _json(alice_http, "GET", "/v1/contacts")
        return [c["state"] for c in contacts] == ["mutual"]

    await wait_until(_tolerant(mutual), DELIVERY_LIMIT)
    alice_chat = (await _json(alice_http, "GET", "/v1/contacts"))[0]["chat_id"]
    mark("mutual contacts")

    # 20 messages each way, all written at once.
    from_alice = await _send(alice_http, alice_chat,
                             [f"alice {i}" for i in range(MESSAGES_EACH_WAY)])  # fmt: skip
    from_bob = await _send(bob_http, bob_chat, [f"bob {i}" for i in range(MESSAGES_EACH_WAY)])
    await _all_through(alice_http, alice_chat, bob_http, bob_chat, from_alice)
    await _all_through(bob_http, bob_chat, alice_http, alice_chat, from_bob)
    mark("20 each way delivered")

    # Alice's link is cut for a minute.
    cut_at = trio.current_time()
    star.set_data_link(alice_ns, "down")
    try:

        async def offline() -> bool:
            return await _health(alice_http) == "offline"

        await wait_until(_tolerant(offline), OFFLINE_WITHIN)
        mark("offline after the cut")
        during_bob = await _send(bob_http, bob_chat, [f"bob while cut {i}" for i in range(5)])
        during_alice = await _send(alice_http, alice_chat,
                                   [f"alice while cut {i}" for i in range(3)])  # fmt: skip
        await trio.sleep(max(0.0, cut_at + CUT_SECONDS - trio.current_time()))  # the cut itself
        assert await _health(alice_http) == "offline"
    finally:
        star.set_data_link(alice_ns, "up")
    mark("link back")

    await _all_through(bob_http, bob_chat, alice_http, alice_chat, from_bob + during_bob)
    mark("Bob's delivered after the cut")
    await _all_through(alice_http, alice_chat, bob_http, bob_chat, from_alice + during_alice)
    mark("Alice's delivered after the cut")

    async def online() -> bool:
        return await _health(alice_http) == "online"

    await wait_until(_tolerant(online), DELIVERY_LIMIT)
    mark("online")
    assert alice.process.process.returncode is None
    return phases
