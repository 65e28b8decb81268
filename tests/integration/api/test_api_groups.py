"""The private-group paths of the REST API against live `chinwag serve` processes (and a
live `chinwag node`): create, invite, accept and decline, messages with their recipients and
acknowledgements, rename, remove, leave, the events, and the refusals (400, 403, 404, 409)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from harness.api_groups import Person, befriend, member_states
from harness.processes import Chinwag
from harness.waiting import wait_until


@contextlib.asynccontextmanager
async def people(chinwag: Chinwag, *names: str) -> AsyncIterator[list[Person]]:
    node = await chinwag.start_node()
    served = []
    for name in names:
        chinwag.create_profile(name)
        served.append(await chinwag.serve(name, node.addr))
    await node.wait_for_mesh(len(names))
    async with contextlib.AsyncExitStack() as stack:
        found = []
        for name, one in zip(names, served, strict=True):
            http = await stack.enter_async_context(one.client())
            person = Person(name.title(), http)
            person.chat_key = (await person.call("GET", "/v1/identity"))["chat_key"]
            found.append(person)
        yield found
    for one in served:
        assert "Traceback" not in one.process.stderr


@pytest.mark.slow
async def test_groups_over_the_rest_api_of_live_serve_processes(chinwag: Chinwag) -> None:
    crowd = people(chinwag, "alice", "bob", "carol")
    async with crowd as (alice, bob, carol), trio.open_nursery() as nursery:
        await befriend(alice, bob)
        await befriend(alice, carol)
        await nursery.start(bob.listen)

        created = await alice.http.post(
            "/v1/groups", json={"name": "Trip", "members": [bob.chat_key, carol.chat_key]}
        )
        assert created.status_code == 201, created.text
        group = created.json()
        group_id = group["id"]
        assert group["name"] == "Trip" and group["admins"] == [alice.chat_key]
        assert {m["chat_key"]: m["state"] for m in group["members"]} == {
            alice.chat_key: "joined",
            bob.chat_key: "invited",
            carol.chat_key: "invited",
        }

        # Invitations: listed with who sent them and when they expire; accepted.
        for invitee in (bob, carol):

            async def invited(person: Person = invitee) -> bool:
                return len(await person.call("GET", "/v1/invites")) == 1

            await wait_until(invited)
            [invite] = await invitee.call("GET", "/v1/invites")
            assert invite["group_id"] == group_id and invite["name"] == "Trip"
            assert invite["from"] == alice.chat_key and invite["state"] == "invited"
            assert invite["expires_at"] > invite["created_at"]
            joined = await invitee.call("POST", f"/v1/invites/{invite['id']}/accept")
            assert joined["state"] == "joined"
        everyone = {"Alice": "joined", "Bob": "joined", "Carol": "joined"}
        for person in (alice, bob, carol):
            await wait_until(lambda p=person: _has(member_states(p, group_id), everyone))
        [chat] = [c for c in await bob.call("GET", "/v1/chats") if c["id"] == group_id]
        assert chat["kind"] == "group" and chat["name"] == "Trip"

        # A message: recipients, then each member's acknowledgement, then delivered.
        sent = await alice.call("POST", f"/v1/chats/{group_id}/messages", json={"text": "hi"})
        assert sent["recipients"] == 2 and sent["delivered_to"] == []

        async def delivered() -> bool:
            message = await alice.call("GET", f"/v1/messages/{sent['id']}")
            return bool(message["state"] == "delivered")

        await wait_until(delivered, 60)
        message = await alice.call("GET", f"/v1/messages/{sent['id']}")
        assert sorted(message["delivered_to"]) == sorted([bob.chat_key, carol.chat_key])
        texts = [m["text"] for m in await bob.call("GET", f"/v1/chats/{group_id}/messages")]
        assert "hi" in texts

        # Refusals: a member who is no admin (403), unknown ids (404), bad input (400),
        # someone who is not a contact or a member already (409).
        rename = await bob.status("PUT", f"/v1/groups/{group_id}", json={"name": "Mine"})
        assert rename[0] == 403
        code, error = await bob.status("DELETE", f"/v1/groups/{group_id}/members/{carol.chat_key}")
        assert code == 403 and "only an admin" in error
        assert (await alice.status("GET", "/v1/groups/" + "0" * 32))[0] == 404
        assert (await alice.status("POST", "/v1/invites/nope/accept"))[0] == 404
        assert (await alice.status("POST", "/v1/groups", json={"name": ""}))[0] == 400
        for bad in ({"name": "x", "members": "b"}, {"name": "x", "extra": 1}, {"name": 5}):
            assert (await alice.status("POST", "/v1/groups", json=bad))[0] == 400
        bad_key = {"name": "x", "members": ["cw1nothing"]}
        assert (await alice.status("POST", "/v1/groups", json=bad_key))[0] == 400
        code, error = await bob.status(
            "POST", "/v1/groups", json={"name": "x", "members": [carol.chat_key]}
        )
        assert code == 409 and "only contacts" in error
        path = f"/v1/groups/{group_id}/members"
        assert (await alice.status("POST", path, json={"chat_key": bob.chat_key}))[0] == 409

        # Rename, leave, invite again and decline, remove: every member sees the same.
        renamed = await alice.call("PUT", f"/v1/groups/{group_id}", json={"name": "Trip 2"})
        assert renamed["name"] == "Trip 2"
        left = await carol.call("POST", f"/v1/groups/{group_id}/leave")
        assert left["my_state"] == "left"
        carol_left = {**everyone, "Carol": "left"}
        await wait_until(lambda: _has(member_states(alice, group_id), carol_left))
        await alice.call("POST", path, json={"chat_key": carol.chat_key})

        async def invited_again() -> bool:
            invites = await carol.call("GET", "/v1/invites")
            return any(i["state"] == "invited" for i in invites)

        await wait_until(invited_again)
        [again] = [i for i in await carol.call("GET", "/v1/invites") if i["state"] == "invited"]
        declined = await carol.call("POST", f"/v1/invites/{again['id']}/decline")
        assert declined["state"] == "declined"
        carol_declined = {**everyone, "Carol": "declined"}
        for person in (alice, bob):  # before Bob is removed: after it, he learns nothing
            await wait_until(lambda p=person: _has(member_states(p, group_id), carol_declined))
        final = {**carol_declined, "Bob": "removed"}
        removed = await alice.call("DELETE", f"{path}/{bob.chat_key}")
        assert {m["display_name"]: m["state"] for m in removed["members"]}["Bob"] == "removed"
        for person in (alice, bob):
            await wait_until(lambda p=person: _has(member_states(p, group_id), final), 60)
        assert (await bob.call("GET", f"/v1/groups/{group_id}"))["my_state"] == "removed"
        [listed] = await alice.call("GET", "/v1/groups")
        assert listed["id"] == group_id and listed["name"] == "Trip 2"

        # Bob's event stream carried the invitation, the group's changes and the message.
        kinds = {kind for kind, _ in bob.events}
        assert {"invite_updated", "group_updated", "message_added"} <= kinds
        names = {e["group"]["name"] for k, e in bob.events if k == "group_updated"}
        assert {"Trip", "Trip 2"} <= names
        nursery.cancel_scope.cancel()


async def _has(found: Any, expected: dict[str, str]) -> bool:
    return bool(await found == expected)
