"""The community routes (chat/api/handlers.py mixes them into `Handlers`): communities,
their links, fetches, join requests, channels and moderation. Creating a community is 201;
asking to join is 202 (queued; it goes out when the description is found); a moderation step
(channels, members, roles, the name and about text) is 200 with the community as it is now;
one our role does not allow is 403."""

from __future__ import annotations

from typing import Any, Protocol

from chat.api.protocol import (
    ApiError,
    Request,
    Response,
    json_response,
    text_field,
    text_list_field,
)
from chat.communities.description import MAX_CHANNELS, MAX_SHARD
from chat.events import CommunityFetchView, CommunityRequestView, CommunityView, to_json

COMMUNITY_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/v1/communities", "list_communities"),
    ("POST", "/v1/communities", "create_community"),
    ("POST", "/v1/communities/fetch", "fetch_community"),
    ("POST", "/v1/communities/join", "join_community"),
    ("GET", "/v1/communities/requests", "list_community_requests"),
    ("POST", "/v1/communities/requests/{id}/accept", "accept_community_request"),
    ("POST", "/v1/communities/requests/{id}/decline", "decline_community_request"),
    ("POST", "/v1/communities/requests/{id}/cancel", "cancel_community_request"),
    ("GET", "/v1/communities/{id}", "get_community"),
    ("PUT", "/v1/communities/{id}", "edit_community"),
    ("GET", "/v1/communities/{id}/link", "community_link"),
    ("POST", "/v1/communities/{id}/channels", "add_community_channel"),
    ("DELETE", "/v1/communities/{id}/channels/{channel_id}", "remove_community_channel"),
    ("POST", "/v1/communities/{id}/members/{chat_key}/kick", "kick_community_member"),
    ("POST", "/v1/communities/{id}/members/{chat_key}/ban", "ban_community_member"),
    ("PUT", "/v1/communities/{id}/members/{chat_key}", "set_community_role"),
    ("POST", "/v1/communities/{id}/leave", "leave_community"),
)


class CommunityFace(Protocol):
    async def communities(self) -> list[CommunityView]: ...
    async def community(self, community_id: str) -> CommunityView: ...
    async def community_link(self, community_id: str) -> tuple[str, str]: ...
    async def create_community(
        self,
        name: str,
        about: str = "",
        join_policy: str = "approval",
        channels: list[str] | None = None,
        shard: int | None = None,
        shared_shard: bool = False,
    ) -> CommunityView: ...
    async def fetch_community(self, link: str) -> CommunityFetchView: ...
    async def join_community(self, link: str, message: str = "") -> CommunityRequestView: ...
    async def community_requests(self) -> list[CommunityRequestView]: ...
    async def accept_community_request(self, request_id: str) -> CommunityRequestView: ...
    async def decline_community_request(self, request_id: str) -> CommunityRequestView: ...
    async def cancel_community_request(self, request_id: str) -> CommunityRequestView: ...
    async def add_community_channel(self, community_id: str, name: str) -> CommunityView: ...
    async def remove_community_channel(
        self, community_id: str, channel_id: str
    ) -> CommunityView: ...
    async def edit_community(
        self, community_id: str, name: str | None = None, about: str | None = None
    ) -> CommunityView: ...
    async def kick_community_member(self, community_id: str, chat_key: str) -> CommunityView: ...
    async def ban_community_member(self, community_id: str, chat_key: str) -> CommunityView: ...
    async def set_community_role(
        self, community_id: str, chat_key: str, role: str
    ) -> CommunityView: ...
    async def leave_community(self, community_id: str) -> CommunityView: ...


def _one(view: Any, status: int = 200) -> Response:
    return json_response(to_json(view), status)


class CommunityHandlers:
    _m: Any
    """The messenger (a CommunityFace)."""

    @property
    def _c(self) -> CommunityFace:
        face: CommunityFace = self._m
        return face

    async def list_communities(self, request: Request) -> Response:
        return json_response([to_json(view) for view in await self._c.communities()])

    async def create_community(self, request: Request) -> Response:
        fields = {"name", "about", "join_policy", "channels", "shard", "shared_shard"}
        body = request.json_object(allowed=frozenset(fields))
        name = text_field(body, "name", required=True) or ""
        about = text_field(body, "about", required=False) or ""
        policy = text_field(body, "join_policy", required=False) or "approval"
        channels = text_list_field(body, "channels", required=False, max_items=MAX_CHANNELS)
        shard = body.get("shard")
        if shard is not None and (
            isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard <= MAX_SHARD
        ):
            raise ApiError(400, f"'shard' is a shard index, 0 to {MAX_SHARD}.")
        shared = body.get("shared_shard", False)
        if shared is None:
            shared = False
        if not isinstance(shared, bool):
            raise ApiError(400, "'shared_shard' is true or false.")
        view = await self._c.create_community(name, about, policy, channels or None, shard, shared)
        return _one(view, 201)

    async def get_community(self, request: Request) -> Response:
        return _one(await self._c.community(request.params["id"]))

    async def community_link(self, request: Request) -> Response:
        link, qr = await self._c.community_link(request.params["id"])
        return json_response({"link": link, "qr": qr})

    async def fetch_community(self, request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"link"}))
        link = text_field(body, "link", required=True) or ""
        return _one(await self._c.fetch_community(link))

    async def join_community(self, request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"link", "message"}))
        link = text_field(body, "link", required=True) or ""
        message = text_field(body, "message", required=False) or ""
        return _one(await self._c.join_community(link, message), 202)

    async def list_community_requests(self, request: Request) -> Response:
        return json_response([to_json(view) for view in await self._c.community_requests()])

    async def accept_community_request(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return _one(await self._c.accept_community_request(request.params["id"]))

    async def decline_community_request(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return _one(await self._c.decline_community_request(request.params["id"]))

    async def cancel_community_request(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return _one(await self._c.cancel_community_request(request.params["id"]))

    async def add_community_channel(self, request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"name"}))
        name = text_field(body, "name", required=True) or ""
        return _one(await self._c.add_community_channel(request.params["id"], name))

    async def edit_community(self, request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"name", "about"}))
        name = text_field(body, "name", required=False)
        about = text_field(body, "about", required=False)
        if name is None and about is None:
            raise ApiError(400, "the request body needs 'name', 'about' or both.")
        return _one(await self._c.edit_community(request.params["id"], name, about))

    async def remove_community_channel(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        params = request.params
        return _one(await self._c.remove_community_channel(params["id"], params["channel_id"]))

    async def kick_community_member(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        params = request.params
        return _one(await self._c.kick_community_member(params["id"], params["chat_key"]))

    async def ban_community_member(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        params = request.params
        return _one(await self._c.ban_community_member(params["id"], params["chat_key"]))

    async def set_community_role(self, request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"role"}))
        role = text_field(body, "role", required=True) or ""
        params = request.params
        return _one(await self._c.set_community_role(params["id"], params["chat_key"], role))

    async def leave_community(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return _one(await self._c.leave_community(request.params["id"]))
