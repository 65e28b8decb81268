"""Issue 15 over HTTP: GET /v1/search (item 11) and POST /v1/health/reconnect (item 2), in
front of real messengers on a loopback service node."""

from __future__ import annotations

from typing import Any

from harness.api_contacts import befriend
from harness.waiting import wait_until


async def test_search_over_http_finds_messages_with_their_chat_and_context(
    api_net: Any,
) -> None:
    await api_net.start_service()
    alice = await api_net.start("alice")
    bob = await api_net.start("bob")
    chat_id = await befriend(alice, bob)
    texts = ["the ferry leaves at nine", "is the ferry on time?", "see you at the pier"]
    for text in texts:
        await alice.call("POST", f"/v1/chats/{chat_id}/messages", json={"text": text})

    found = await alice.call("GET", "/v1/search", params={"q": "ferry"})
    assert {r["text"] for r in found} == set(texts[:2])
    result = found[0]
    assert {"chat_id", "message_id", "text", "timestamp"} <= set(result)
    assert result["chat_id"] == chat_id and result["chat_name"] == "Bob"
    assert [result["snippet"][a:b] for a, b in result["highlights"]] == ["ferry"]
    message = await alice.call("GET", f"/v1/messages/{result['message_id']}")
    assert message["text"] == result["text"] and message["timestamp"] == result["timestamp"]
    # Read on from a result.
    first = next(r for r in found if r["text"] == texts[0])
    after = await alice.call(
        "GET", f"/v1/chats/{chat_id}/messages", params={"after": first["message_id"]}
    )
    assert [m["text"] for m in after] == texts[1:]

    assert await alice.call("GET", "/v1/search", params={"q": "ferry", "chat": chat_id}) == found
    assert len(await alice.call("GET", "/v1/search", params={"q": "the", "limit": 1})) == 1
    assert await alice.call("GET", "/v1/search", params={"q": "submarine"}) == []
    for params, status, words in [
        ({"q": ""}, 400, "type a word"),
        ({}, 400, "type a word"),
        ({"q": "x" * 201}, 400, "at most 200 characters"),
        ({"q": "ferry", "limit": "1000"}, 400, "'limit'"),
        ({"q": "ferry", "chat": "f" * 32}, 404, "no chat"),
        ({"q": '"ferry" OR NEAR(x'}, 200, ""),  # words, never query syntax
    ]:
        response = await alice.http.get("/v1/search", params=params)
        assert response.status_code == status, (params, response.text)
        if status != 200:
            assert words in response.json()["error"]


async def test_reconnect_over_http_dials_at_once_or_says_there_is_no_peer(
    api_net: Any,
) -> None:
    loner = await api_net.start("loner")  # before the service node: no peer, no LAN discovery
    await api_net.start_service()
    alice = await api_net.start("alice")

    async def online() -> bool:
        return bool((await alice.call("GET", "/v1/health"))["status"] == "online")

    await wait_until(online)
    health = await alice.call("POST", "/v1/health/reconnect")
    assert health["known_peers"] == 1 and health["peers"] == 1
    assert {"dialing", "next_dial_at"} <= set(health)

    response = await loner.http.post("/v1/health/reconnect")
    assert response.status_code == 409
    assert "no peer to reconnect to" in response.json()["error"]
