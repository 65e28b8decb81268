"""The REST API in front of real messengers: a service node (relay + store) and two clients
on loopback, everything driven over HTTP as a bot or a QA script would."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio
from harness.api_contacts import befriend
from harness.waiting import wait_until

from chat.api.sse import parse_frames


async def test_contact_request_messages_states_trace_and_events_over_http(api_net: Any) -> None:
    await api_net.start_service()
    alice = await api_net.start("alice")
    bob = await api_net.start("bob")
    identity = await alice.call("GET", "/v1/identity")
    assert identity["display_name"] == "Alice"
    assert identity["chat_key"].startswith("cw1") and identity["contact_link"]

    chat_id = await befriend(alice, bob)
    [chat] = await alice.call("GET", "/v1/chats")
    assert chat["id"] == chat_id and chat["kind"] == "direct"
    assert {"name", "unread"} <= set(chat)

    # Bob listens to his event stream while Alice writes.
    bob_events: list[tuple[str, Any]] = []
    listening = trio.Event()

    async def listen() -> None:
        async with bob.http.stream("GET", "/v1/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            buffered = b""
            async for chunk in response.aiter_raw():
                listening.set()  # the first chunk is the 'connected' comment
                buffered += chunk
                found, buffered = parse_frames(buffered)
                bob_events.extend((kind, json.loads(data)) for kind, data in found)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(listen)
        await listening.wait()
        queued = await alice.call("POST", f"/v1/chats/{chat_id}/messages", json={"text": "hello"})
        assert queued["state"] == "queued" and queued["outgoing"] is True
        message_id = queued["id"]

        async def delivered() -> bool:
            message = await alice.call("GET", f"/v1/messages/{message_id}")
            return bool(message["state"] == "delivered")

        await wait_until(delivered)

        async def bob_saw_it() -> bool:
            return any(
                kind == "message_added" and event["message"]["text"] == "hello"
                for kind, event in bob_events
            )

        await wait_until(bob_saw_it)
        nursery.cancel_scope.cancel()

    [received] = await bob.call("GET", f"/v1/chats/{chat_id}/messages")
    assert received["id"] == message_id and received["text"] == "hello"
    assert received["outgoing"] is False and received["state"] == "received"
    assert received["sender"] == identity["chat_key"]
    page = await alice.call("GET", f"/v1/chats/{chat_id}/messages", params={"limit": 1})
    assert [m["id"] for m in page] == [message_id]
    assert {"timestamp", "state_reason", "attempts", "next_attempt_at"} <= set(page[0])

    trace = await alice.call("GET", f"/v1/messages/{message_id}/trace")
    states = [step["to_state"] for step in trace]
    assert states[0] == "queued" and "sent" in states and states[-1] == "delivered"
    assert all(isinstance(step["at"], float) for step in trace)
    assert trace[-1]["evidence"]["ack_from"] == (await bob.call("GET", "/v1/identity"))["chat_key"]
    assert [kind for kind, _ in bob_events].count("message_added") == 1

    assert await alice.call("GET", "/v1/outbox") == []
    retry = await alice.http.post(f"/v1/messages/{message_id}/retry")
    assert retry.status_code == 409  # delivered: nothing to retry
    assert (await alice.call("POST", "/v1/outbox/retry")) == {"retried": 0}
    read = await bob.call("POST", f"/v1/chats/{chat_id}/read")
    assert read["unread"] == 0

    # Emoji verification, both sides over their APIs.
    alice_key, bob_key = identity["chat_key"], chat["peer_chat_key"]
    started = await alice.call("POST", f"/v1/contacts/{bob_key}/verification/start")
    assert started["chat_key"] == bob_key and started["state"] == "started"

    async def both_compare() -> bool:
        views = [
            await alice.call("GET", f"/v1/contacts/{bob_key}/verification"),
            await bob.call("GET", f"/v1/contacts/{alice_key}/verification"),
        ]
        return all(v["state"] == "compare" and len(v["emoji"]) == 7 for v in views)

    await wait_until(both_compare)
    alice_view = await alice.call("GET", f"/v1/contacts/{bob_key}/verification")
    bob_view = await bob.call("GET", f"/v1/contacts/{alice_key}/verification")
    assert alice_view["emoji"] == bob_view["emoji"]
    assert all(len(pair) == 2 for pair in alice_view["emoji"])
    await alice.call("POST", f"/v1/contacts/{bob_key}/verification/confirm")
    await bob.call("POST", f"/v1/contacts/{alice_key}/verification/confirm")

    async def verified() -> bool:
        contacts = await alice.call("GET", "/v1/contacts")
        return bool(contacts[0]["verified"])

    await wait_until(verified)

    # Alice renames herself: her link carries the new name, and Bob's contact list shows it.
    renamed = await alice.call("PUT", "/v1/identity", json={"display_name": " Ally\x1b[31m "})
    assert renamed["display_name"] == "Ally[31m"  # the escape character is gone
    assert renamed["contact_link"] != identity["contact_link"]
    assert await alice.call("GET", "/v1/identity") == renamed

    async def bob_sees_the_name() -> bool:
        contacts = await bob.call("GET", "/v1/contacts")
        chats = await bob.call("GET", "/v1/chats")
        return contacts[0]["display_name"] == chats[0]["name"] == "Ally[31m"

    await wait_until(bob_sees_the_name)


async def test_messenger_refusals_are_4xx_with_a_sentence(api_net: Any) -> None:
    alice = await api_net.start("alice")
    http: httpx.AsyncClient = alice.http
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("POST", "/v1/chats/" + "0" * 32 + "/messages", {"json": {"text": "x"}}, 404),
        ("GET", "/v1/chats/" + "0" * 32 + "/messages", {}, 404),
        ("POST", "/v1/contacts", {"json": {"link": "not a link"}}, 400),
        ("POST", "/v1/contacts", {"json": {"message": "no link"}}, 400),
        ("POST", "/v1/contacts", {"json": {"link": 5}}, 400),
        ("POST", "/v1/contacts/cw1nobody/accept", {}, 404),
        ("POST", "/v1/contacts/cw1nobody/cancel", {}, 404),
        ("GET", "/v1/messages/abc", {}, 404),
        ("GET", "/v1/messages/abc/trace", {}, 404),
        ("POST", "/v1/messages/abc/retry", {}, 404),
        ("POST", "/v1/messages/abc/discard", {}, 404),
        ("POST", "/v1/messages/abc/discard", {"json": {"why": 1}}, 400),
        ("GET", "/v1/chats/x/messages?limit=0", {}, 400),
        ("POST", "/v1/chats/x/read", {}, 404),
        ("POST", "/v1/contacts/cw1nobody/verification/start", {}, 404),
        ("POST", "/v1/contacts/cw1nobody/verification/confirm", {}, 404),
        ("PUT", "/v1/identity", {"json": {"display_name": " \u200b "}}, 400),
        ("PUT", "/v1/identity", {"json": {"display_name": "x" * 65}}, 400),
        ("PUT", "/v1/identity", {"json": {"name": "Al"}}, 400),
        ("PUT", "/v1/identity", {"json": {"display_name": 5}}, 400),
    ]
    for method, path, kwargs, status in cases:
        response = await http.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.text)
        assert isinstance(response.json()["error"], str)
    own = (await alice.call("GET", "/v1/identity"))["contact_link"]
    response = await http.post("/v1/contacts", json={"link": own})
    assert response.status_code == 400 and "your own" in response.json()["error"]


async def test_idle_event_streams_get_keepalives_and_end_when_the_api_stops(
    api_net: Any,
) -> None:
    alice = await api_net.start("alice")  # its API sends a keep-alive after 1 s of quiet
    async with alice.http.stream("GET", "/v1/events") as response:
        chunks = response.aiter_raw()
        assert await chunks.__anext__() == b": connected\n\n"
        with trio.fail_after(5):
            async for chunk in chunks:
                if chunk == b": keep-alive\n\n":
                    break
        alice.app.close()
        with trio.fail_after(5):
            rest = b"".join([chunk async for chunk in chunks])
    assert parse_frames(rest)[0] == []
