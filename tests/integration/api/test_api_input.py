"""Input the API must refuse with a sentence, in front of real messengers (issue 13 items 6
and 8): text that is not Unicode in any string field, a contact that does not exist, text
with nothing visible, an intro over the limit, a reply to nothing; and what it must not do
twice (a repeated contact request) or leave unsaid (a withdrawn request)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from harness.api_contacts import befriend
from harness.waiting import wait_until

from chat.messenger import MAX_INTRO_LENGTH

LONE = "\\ud800"
"""A lone surrogate as JSON writes it: legal JSON, not Unicode text."""


def _sentence(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]
    assert message.endswith(".")
    return message


def _body(**fields: str) -> bytes:
    """A JSON object whose values are written as given (so `\\ud800` stays an escape)."""
    members = ", ".join(f'"{name}": "{value}"' for name, value in fields.items())
    return ("{" + members + "}").encode()


async def test_a_lone_surrogate_in_any_text_field_is_a_400_naming_it(api_net: Any) -> None:
    alice = await api_net.start("alice")
    http: httpx.AsyncClient = alice.http
    link = (await alice.call("GET", "/v1/identity"))["contact_link"]
    cases = [
        ("PUT", "/v1/identity", _body(display_name=f"Al{LONE}ice"), "display_name"),
        ("POST", "/v1/contacts", _body(link=f"{link}{LONE}"), "link"),
        ("POST", "/v1/contacts", _body(link=link, message=f"hi {LONE}"), "message"),
        ("POST", "/v1/chats/" + "0" * 32 + "/messages", _body(text=f"a{LONE}"), "text"),
        ("POST", "/v1/chats/" + "0" * 32 + "/messages", _body(text="a", reply_to=LONE), "reply_to"),
        ("POST", "/v1/outbox/retry", _body(**{f"x{LONE}": "1"}), "a field name"),
    ]
    for method, path, body, field in cases:
        response = await http.request(method, path, content=body)
        message = _sentence(response, 400)
        assert field in message and "lone surrogate (U+D800)" in message, (path, message)
    assert (await alice.call("GET", "/v1/identity"))["display_name"] == "Alice"
    assert await alice.call("GET", "/v1/contacts") == []


async def test_the_verification_of_an_unknown_contact_is_a_404(api_net: Any) -> None:
    alice = await api_net.start("alice")
    bob = await api_net.start("bob")
    bob_key = (await bob.call("GET", "/v1/identity"))["chat_key"]
    for chat_key in ("cw1nobody", bob_key):
        response = await alice.http.get(f"/v1/contacts/{chat_key}/verification")
        assert response.status_code == 404, response.text
        assert "you have no contact with the chat key" in response.json()["error"]


async def test_message_text_must_be_unicode_and_pairs_are_joined(api_net: Any) -> None:
    await api_net.start_service()
    alice = await api_net.start("alice")
    bob = await api_net.start("bob")
    chat_id = await befriend(alice, bob)
    path = f"/v1/chats/{chat_id}/messages"
    response = await alice.http.post(path, content=_body(text=f"broken {LONE}"))
    assert "'text' is not Unicode text" in _sentence(response, 400)
    response = await alice.http.post(path, content=_body(text="fine", reply_to=f"x{LONE}"))
    assert "'reply_to' is not Unicode text" in _sentence(response, 400)
    # An escaped pair is one character, as JSON means it.
    sent = await alice.call("POST", path, content=_body(text="smile \\ud83d\\ude00"))
    assert sent["text"] == "smile \U0001f600"
    texts = [m["text"] for m in await alice.call("GET", path)]
    assert texts == ["smile \U0001f600"]
    assert json.dumps(texts, ensure_ascii=False).encode()  # all of it is UTF-8


async def test_invisible_text_a_long_intro_and_a_reply_to_nothing_are_400s(api_net: Any) -> None:
    await api_net.start_service()
    alice = await api_net.start("alice")
    bob = await api_net.start("bob")
    chat_id = await befriend(alice, bob)
    path = f"/v1/chats/{chat_id}/messages"
    response = await alice.http.post(path, json={"text": "\u200b\u200b"})
    assert response.status_code == 400 and "empty" in response.json()["error"]
    for reply_to in ("0" * 32, "../../etc/passwd", "x" * 60_000):
        response = await alice.http.post(path, json={"text": "re", "reply_to": reply_to})
        assert response.status_code == 400, response.text
        assert "reply_to names no message of this chat" in response.json()["error"]
    first = await alice.call("POST", path, json={"text": "first"})
    reply = await alice.call("POST", path, json={"text": "re", "reply_to": first["id"]})
    assert reply["reply_to"] == first["id"]
    carol = await api_net.start("carol")
    carol_id = await carol.call("GET", "/v1/identity")
    response = await alice.http.post(
        "/v1/contacts",
        json={"link": carol_id["contact_link"], "message": "x" * (MAX_INTRO_LENGTH + 1)},
    )
    assert response.status_code == 400
    assert f"at most {MAX_INTRO_LENGTH} characters" in response.json()["error"]
    contacts = await alice.call("GET", "/v1/contacts")
    assert carol_id["chat_key"] not in [c["chat_key"] for c in contacts]
    health = await alice.call("GET", "/v1/health")
    assert (health["stranger_requests_dropped"], health["stranger_requests_held"]) == (0, 0)


async def test_a_repeated_request_is_sent_once_and_a_withdrawal_reaches_them(api_net: Any) -> None:
    await api_net.start_service()
    alice = await api_net.start("alice")
    bob = await api_net.start("bob")
    bob_id = await bob.call("GET", "/v1/identity")
    alice_key = (await alice.call("GET", "/v1/identity"))["chat_key"]
    body = {"link": bob_id["contact_link"], "message": "hi, Alice"}
    first = await alice.call("POST", "/v1/contacts", json=body)
    for _ in range(49):
        again = await alice.call("POST", "/v1/contacts", json=body)
        assert (again["sends"], again["next_send_at"]) == (1, first["next_send_at"])
    [outbox_item] = await alice.call("GET", "/v1/outbox")
    assert outbox_item["attempts"] == 1

    async def bob_has_it() -> bool:
        return [c["state"] for c in await bob.call("GET", "/v1/contacts")] == ["request_received"]

    await wait_until(bob_has_it)
    cancelled = await alice.call("POST", f"/v1/contacts/{bob_id['chat_key']}/cancel")
    assert cancelled["state"] == "cancelled_by_us"

    async def bob_sees_it_withdrawn() -> bool:
        contacts = await bob.call("GET", "/v1/contacts")
        return [(c["chat_key"], c["state"]) for c in contacts] == [(alice_key, "cancelled_by_them")]

    await wait_until(bob_sees_it_withdrawn)
