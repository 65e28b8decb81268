"""The community paths of the REST API against live `chinwag serve` processes and a live
`chinwag node` serving the shared community shard: create, link, fetch, join, answer, channels
and their messages, roles, kick, ban, leave, and the refusals (400, 403, 404, 409)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from harness.api_groups import Person
from harness.processes import Chinwag
from harness.waiting import wait_until

from chat.communities.shards import DEFAULT_SHARED_SHARD


@contextlib.asynccontextmanager
async def people(chinwag: Chinwag, *names: str) -> AsyncIterator[list[Person]]:
    shards = ("--shard", "0", "--shard", "1", "--shard", str(DEFAULT_SHARED_SHARD))
    node = await chinwag.start_node(extra=shards)
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


async def requests_of(person: Person, direction: str, state: str) -> list[dict[str, Any]]:
    return [
        r
        for r in await person.call("GET", "/v1/communities/requests")
        if r["direction"] == direction and r["state"] == state
    ]


@pytest.mark.slow
async def test_communities_over_the_rest_api_of_live_serve_processes(chinwag: Chinwag) -> None:
    async with people(chinwag, "alice", "bob", "carol") as (alice, bob, carol):
        created = await alice.http.post(
            "/v1/communities",
            json={"name": "Birders", "about": "birds", "join_policy": "approval",
                  "channels": ["general"], "shared_shard": True},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        community = created.json()
        cid = community["id"]
        assert community["my_role"] == "owner" and community["protection_key"] == ""
        assert community["shard"].endswith(f"/{DEFAULT_SHARED_SHARD}")
        assert [m["role"] for m in community["members"]] == ["owner"]
        assert [c["id"] for c in await alice.call("GET", "/v1/communities")] == [cid]
        link = (await alice.call("GET", f"/v1/communities/{cid}/link"))["link"]

        for person in (bob, carol):
            fetch = await person.call("POST", "/v1/communities/fetch", json={"link": link})
            assert fetch["community_id"] == cid and fetch["state"] in ("fetching", "found")

            async def found(person: Person = person) -> bool:
                again = await person.call("POST", "/v1/communities/fetch", json={"link": link})
                return bool(again["state"] == "found")

            await wait_until(found, 60)
            joined = await person.http.post(
                "/v1/communities/join", json={"link": link, "message": "hi"}
            )
            assert joined.status_code == 202, joined.text
            assert joined.json()["state"] == "pending"

        async def two_pending() -> bool:
            return len(await requests_of(alice, "received", "pending")) == 2

        await wait_until(two_pending, 60)
        by_key = {r["chat_key"]: r for r in await requests_of(alice, "received", "pending")}
        assert by_key[bob.chat_key]["message"] == "hi"
        accepted = await alice.call(
            "POST", f"/v1/communities/requests/{by_key[bob.chat_key]['id']}/accept"
        )
        assert accepted["state"] == "accepted"
        await alice.call("POST", f"/v1/communities/requests/{by_key[carol.chat_key]['id']}/decline")
        # A request already answered cannot be answered again.
        again = await alice.status(
            "POST", f"/v1/communities/requests/{by_key[carol.chat_key]['id']}/accept"
        )
        assert again[0] == 409

        async def bob_in_carol_out() -> bool:
            # 404 until Bob's keys arrive (the accept returns before they reach him).
            bobs = await bob.http.get(f"/v1/communities/{cid}")
            carols = await requests_of(carol, "sent", "declined")
            return bool(bobs.status_code == 200 and bobs.json()["my_role"] == "member" and carols)

        await wait_until(bob_in_carol_out, 60)

        # A channel added by the owner; a message in it reaches Bob; chats list it as a channel.
        added = await alice.call("POST", f"/v1/communities/{cid}/channels", json={"name": "news"})
        news = next(c["id"] for c in added["channels"] if c["name"] == "news")
        assert (await bob.status("POST", f"/v1/communities/{cid}/channels", json={"name": "x"}))[
            0
        ] == 403

        async def bob_has_news() -> bool:
            return any(c["id"] == news for c in await bob.call("GET", "/v1/chats"))

        await wait_until(bob_has_news, 60)
        [chat] = [c for c in await bob.call("GET", "/v1/chats") if c["id"] == news]
        assert chat["kind"] == "channel"
        sent = await alice.call("POST", f"/v1/chats/{news}/messages", json={"text": "tweet"})
        assert sent["recipients"] == 1

        async def bob_read_it() -> bool:
            messages = await bob.call("GET", f"/v1/chats/{news}/messages")
            return [m["text"] for m in messages] == ["tweet"]

        await wait_until(bob_read_it, 60)

        # The name and about text (owner and admins), and removing a channel.
        assert (await bob.status("PUT", f"/v1/communities/{cid}", json={"name": "x"}))[0] == 403
        assert (await alice.status("PUT", f"/v1/communities/{cid}", json={}))[0] == 400
        edited = await alice.call(
            "PUT", f"/v1/communities/{cid}", json={"name": "Birdwatchers", "about": "all birds"}
        )
        assert (edited["name"], edited["about"]) == ("Birdwatchers", "all birds")
        assert edited["version"] > added["version"]

        async def bob_sees_the_name() -> bool:
            return bool((await bob.call("GET", f"/v1/communities/{cid}"))["name"] == "Birdwatchers")

        await wait_until(bob_sees_the_name, 60)
        assert (await bob.status("DELETE", f"/v1/communities/{cid}/channels/{news}"))[0] == 403
        removed = await alice.call("DELETE", f"/v1/communities/{cid}/channels/{news}")
        assert [c["name"] for c in removed["channels"]] == ["general"]
        assert (await alice.status("DELETE", f"/v1/communities/{cid}/channels/{news}"))[0] == 409

        async def news_gone_for_bob() -> bool:
            return all(c["id"] != news for c in await bob.call("GET", "/v1/chats"))

        await wait_until(news_gone_for_bob, 60)

        # Roles, kick, ban, leave, and refusals.
        made = await alice.call(
            "PUT", f"/v1/communities/{cid}/members/{bob.chat_key}", json={"role": "admin"}
        )
        assert {m["chat_key"]: m["role"] for m in made["members"]}[bob.chat_key] == "admin"
        assert (
            await alice.status(
                "PUT", f"/v1/communities/{cid}/members/{bob.chat_key}", json={"role": "king"}
            )
        )[0] == 400
        assert (await bob.status("POST", f"/v1/communities/{cid}/members/{alice.chat_key}/kick"))[
            0
        ] in (403, 409)
        kicked = await alice.call("POST", f"/v1/communities/{cid}/members/{bob.chat_key}/kick")
        assert [m["role"] for m in kicked["members"]] == ["owner"]
        assert kicked["epoch"] == community["epoch"] + 1

        async def bob_lost_the_channels() -> bool:
            # Removed: the community's channels leave his chat list (their history is kept).
            chats = {c["id"] for c in await bob.call("GET", "/v1/chats")}
            return not chats & {c["id"] for c in added["channels"]}

        await wait_until(bob_lost_the_channels, 60)
        banned = await alice.call("POST", f"/v1/communities/{cid}/members/{carol.chat_key}/ban")
        assert banned["epoch"] == kicked["epoch"] + 1
        assert (await alice.status("POST", f"/v1/communities/{cid}/leave"))[0] == 409
        assert (await alice.status("GET", "/v1/communities/" + "0" * 32))[0] == 404
        assert (await alice.status("POST", "/v1/communities/fetch", json={"link": "chinwag:nope"}))[
            0
        ] == 400
        assert (await alice.status("POST", "/v1/communities", json={"name": ""}))[0] == 400
        assert (await alice.status("POST", "/v1/communities", json={"name": "x", "shard": 5000}))[
            0
        ] == 400
        left = await bob.call("POST", f"/v1/communities/{cid}/leave")
        assert left["my_role"] == "none"
        assert await bob.call("GET", "/v1/communities") == []
