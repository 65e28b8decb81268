"""The façade's community commands (chat/messenger/facade.py mixes them in): each checks its
text input, takes the messenger's lock and hands over to communities.py or
community_joins.py."""

from __future__ import annotations

import trio

from chat import events as ev
from chat.messenger.communities import CommunityChats
from chat.messenger.community_joins import CommunityJoins
from chat.text import find_lone_surrogate, join_surrogate_pairs

MAX_REQUEST_MESSAGE_INPUT = 2000


def _text(text: str, what: str) -> str:
    lone = find_lone_surrogate(text)
    if lone is not None:
        raise ev.InvalidInput(f"{what} is not Unicode text: it has {lone.describe()}")
    return join_surrogate_pairs(text)


class CommunityCommands:
    _communities: CommunityChats
    _community_joins: CommunityJoins
    _lock: trio.Lock

    async def communities(self) -> list[ev.CommunityView]:
        return self._communities.views()

    async def community(self, community_id: str) -> ev.CommunityView:
        return self._communities.view(self._communities.community(community_id))

    async def community_link(self, community_id: str) -> tuple[str, str]:
        """(the link's text, the same as a text QR code)."""
        community = self._communities.community(community_id)
        link = self._community_joins.fetching.link_of(community.description)
        return link.encode(), link.qr()

    async def create_community(
        self,
        name: str,
        about: str = "",
        join_policy: str = "approval",
        channels: list[str] | None = None,
        shard: int | None = None,
        shared_shard: bool = False,
    ) -> ev.CommunityView:
        """A new community we own, on a free shard of the community range (or `shard`, or
        the shared unprotected shard); its id is derived from its new owner key."""
        name = _text(name, "a community name")
        about = _text(about, "the about text")
        channels = [_text(c, "a channel name") for c in channels] if channels else None
        async with self._lock:
            return await self._communities.create(
                name, about, join_policy, channels, shard, shared_shard
            )

    async def fetch_community(self, link: str) -> ev.CommunityFetchView:
        """Look a community up by its link: fetching, then found or timed out."""
        link = _text(link, "a community link")
        async with self._lock:
            return await self._community_joins.fetch(link)

    async def community_fetch(self, community_id: str) -> ev.CommunityFetchView:
        return self._community_joins.fetch_view(community_id[:64])

    async def join_community(self, link: str, message: str = "") -> ev.CommunityRequestView:
        link = _text(link, "a community link")
        message = _text(message[:MAX_REQUEST_MESSAGE_INPUT], "a request message")
        async with self._lock:
            return await self._community_joins.join(link, message)

    async def community_requests(self) -> list[ev.CommunityRequestView]:
        return self._community_joins.views()

    async def accept_community_request(self, request_id: str) -> ev.CommunityRequestView:
        async with self._lock:
            return await self._community_joins.accept(request_id)

    async def decline_community_request(self, request_id: str) -> ev.CommunityRequestView:
        async with self._lock:
            return await self._community_joins.decline(request_id)

    async def cancel_community_request(self, request_id: str) -> ev.CommunityRequestView:
        async with self._lock:
            return await self._community_joins.cancel(request_id)

    async def add_community_channel(self, community_id: str, name: str) -> ev.CommunityView:
        name = _text(name, "a channel name")
        async with self._lock:
            return await self._communities.add_channel(community_id, name)

    async def remove_community_channel(
        self, community_id: str, channel_id: str
    ) -> ev.CommunityView:
        async with self._lock:
            return await self._communities.remove_channel(community_id, channel_id)

    async def edit_community(
        self, community_id: str, name: str | None = None, about: str | None = None
    ) -> ev.CommunityView:
        """A new name and/or about text (None keeps it)."""
        name = _text(name, "a community name") if name is not None else None
        about = _text(about, "the about text") if about is not None else None
        async with self._lock:
            return await self._communities.edit(community_id, name, about)

    async def kick_community_member(self, community_id: str, chat_key: str) -> ev.CommunityView:
        async with self._lock:
            return await self._communities.kick(community_id, _text(chat_key, "a chat key"))

    async def ban_community_member(self, community_id: str, chat_key: str) -> ev.CommunityView:
        async with self._lock:
            return await self._communities.ban(community_id, _text(chat_key, "a chat key"))

    async def set_community_role(
        self, community_id: str, chat_key: str, role: str
    ) -> ev.CommunityView:
        async with self._lock:
            return await self._communities.set_role(
                community_id, _text(chat_key, "a chat key"), _text(role, "a role")
            )

    async def leave_community(self, community_id: str) -> ev.CommunityView:
        async with self._lock:
            return await self._communities.leave(community_id)
