"""A community for `chinwag lab run`'s channel traffic, set up over the REST API before the
clock starts: client 0 creates it on the shared community shard (unprotected; the service
nodes serve that shard) with one channel, every other client fetches it by its link and asks
to join, client 0 accepts every request, and the lab waits until every member lists the
channel. Its messages then go to `/v1/chats/{channel}/messages` like any chat's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chat.communities.shards import DEFAULT_SHARED_SHARD

if TYPE_CHECKING:
    from chat.lab.live_processes import Client

COMMUNITY_SHARD = DEFAULT_SHARED_SHARD
"""The shard the lab's community lives on; the service nodes serve it too."""
CHANNEL = "lab"

Call = Callable[..., Awaitable[Any]]
Until = Callable[..., Awaitable[Any]]


@dataclass
class LabCommunity:
    community_id: str = ""
    channel_id: str = ""
    link: str = ""

    async def set_up(self, clients: list[Client], call: Call, until: Until) -> None:
        owner, others = clients[0], clients[1:]
        body = {"name": "lab", "join_policy": "approval", "channels": [CHANNEL],
                "shared_shard": True}  # fmt: skip
        community = await call(owner, "POST", "/v1/communities", json=body)
        self.community_id = community["id"]
        self.channel_id = next(c["id"] for c in community["channels"] if c["name"] == CHANNEL)
        self.link = (await call(owner, "GET", f"/v1/communities/{self.community_id}/link"))["link"]
        for client in others:

            async def found(client: Client = client) -> bool:
                fetch = await call(
                    client, "POST", "/v1/communities/fetch", json={"link": self.link}
                )
                return bool(fetch["state"] == "found")

            await until(found, every=1.0)
            await call(client, "POST", "/v1/communities/join", json={"link": self.link})
        asked = {c.chat_key for c in others}

        async def all_accepted() -> bool:
            for request in await call(owner, "GET", "/v1/communities/requests"):
                if request["direction"] == "received" and request["state"] == "pending":
                    await call(owner, "POST", f"/v1/communities/requests/{request['id']}/accept")
            view = await call(owner, "GET", f"/v1/communities/{self.community_id}")
            return asked <= {m["chat_key"] for m in view["members"]}

        await until(all_accepted, every=1.0)
        for client in others:

            async def has_channel(client: Client = client) -> bool:
                chats = await call(client, "GET", "/v1/chats")
                return any(c["id"] == self.channel_id for c in chats)

            await until(has_channel, every=1.0)
