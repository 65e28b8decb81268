"""The messenger's commands as routes. `ROUTES` is the whole API surface (method, path,
handler name); chat/api/openapi.py documents the same table, and a test holds them equal.

Status codes: reading is 200; sending something (a contact request, a message, a retry) is
202, because it is queued and goes out when it can; changing a contact's state or our own
display name is 200; a discard is 204. Creating a group is 201 (it exists at once, its
invitations are queued); a change to a group (rename, add, remove, leave) is 200 with the
group as it is now (the change is in its log and queued for the members); a change that
needs an admin, by a member who is none, is 403.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import trio

from chat.api import sse
from chat.api.community_handlers import COMMUNITY_ROUTES, CommunityHandlers
from chat.api.protocol import (
    Request,
    Response,
    SendChunk,
    StreamResponse,
    json_response,
    no_content,
    text_field,
    text_list_field,
)
from chat.api.routing import Route
from chat.events import (
    BandwidthView,
    ChatView,
    ContactView,
    GroupView,
    HealthView,
    IdentityView,
    InviteView,
    MessageView,
    OutboxItemView,
    SearchResultView,
    Subscription,
    TraceStep,
    VerificationView,
    to_json,
)
from chat.groups.log import MAX_MEMBERS
from chat.history import MAX_PAGE, MAX_SEARCH_RESULTS

log = logging.getLogger(__name__)

ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/v1/identity", "identity"),
    ("PUT", "/v1/identity", "set_identity"),
    ("GET", "/v1/health", "health"),
    ("POST", "/v1/health/reconnect", "reconnect"),
    ("GET", "/v1/bandwidth", "bandwidth"),
    ("GET", "/v1/contacts", "list_contacts"),
    ("POST", "/v1/contacts", "add_contact"),
    ("POST", "/v1/contacts/{chat_key}/accept", "accept_contact"),
    ("POST", "/v1/contacts/{chat_key}/decline", "decline_contact"),
    ("POST", "/v1/contacts/{chat_key}/cancel", "cancel_contact_request"),
    ("GET", "/v1/contacts/{chat_key}/verification", "verification"),
    ("POST", "/v1/contacts/{chat_key}/verification/start", "start_verification"),
    ("POST", "/v1/contacts/{chat_key}/verification/confirm", "confirm_verification"),
    ("POST", "/v1/contacts/{chat_key}/verification/cancel", "cancel_verification"),
    ("GET", "/v1/chats", "list_chats"),
    ("POST", "/v1/chats/{id}/read", "mark_read"),
    ("GET", "/v1/chats/{id}/messages", "list_messages"),
    ("POST", "/v1/chats/{id}/messages", "send_message"),
    ("GET", "/v1/messages/{id}", "get_message"),
    ("POST", "/v1/messages/{id}/retry", "retry_message"),
    ("POST", "/v1/messages/{id}/discard", "discard_message"),
    ("GET", "/v1/messages/{id}/trace", "trace_message"),
    ("GET", "/v1/search", "search"),
    ("GET", "/v1/outbox", "outbox"),
    ("POST", "/v1/outbox/retry", "retry_all"),
    ("GET", "/v1/groups", "list_groups"),
    ("POST", "/v1/groups", "create_group"),
    ("GET", "/v1/groups/{id}", "get_group"),
    ("PUT", "/v1/groups/{id}", "rename_group"),
    ("POST", "/v1/groups/{id}/members", "add_group_member"),
    ("DELETE", "/v1/groups/{id}/members/{chat_key}", "remove_group_member"),
    ("POST", "/v1/groups/{id}/admins", "grant_group_admin"),
    ("POST", "/v1/groups/{id}/leave", "leave_group"),
    ("GET", "/v1/invites", "list_invites"),
    ("POST", "/v1/invites/{id}/accept", "accept_invite"),
    ("POST", "/v1/invites/{id}/decline", "decline_invite"),
    *COMMUNITY_ROUTES,
    ("GET", "/v1/events", "events"),
)
"""(method, path pattern, operation id): the operation id names the Handlers method."""

DEFAULT_PAGE = 50
DEFAULT_SEARCH_RESULTS = 20
EVENT_BUFFER = 1000
"""Events a slow /v1/events client may fall behind before it loses some (the messenger
counts and logs the loss rather than stall)."""


class MessengerFace(Protocol):
    """What the API needs of chat.messenger.Messenger (its contract, as a type)."""

    def identity(self) -> IdentityView: ...
    async def set_display_name(self, name: str) -> IdentityView: ...
    async def add_contact(self, link: str, intro: str = "") -> ContactView: ...
    async def accept_contact(self, chat_key: str) -> ContactView: ...
    async def decline_contact(self, chat_key: str) -> ContactView: ...
    async def cancel_contact_request(self, chat_key: str) -> ContactView: ...
    async def contacts(self) -> list[ContactView]: ...
    def verification(self, chat_key: str) -> VerificationView: ...
    async def start_verification(self, chat_key: str) -> VerificationView: ...
    async def confirm_verification(self, chat_key: str) -> VerificationView: ...
    async def cancel_verification(self, chat_key: str) -> VerificationView: ...
    async def chats(self) -> list[ChatView]: ...
    async def send_text(
        self, chat_id: str, text: str, reply_to: str | None = None
    ) -> MessageView: ...
    async def messages(
        self,
        chat_id: str,
        *,
        limit: int = 50,
        before: str | None = None,
        after: str | None = None,
    ) -> list[MessageView]: ...
    async def search(
        self, query: str, *, chat_id: str | None = None, limit: int = 20
    ) -> list[SearchResultView]: ...
    async def message(self, message_id: str) -> MessageView: ...
    async def retry(self, message_id: str) -> MessageView: ...
    async def retry_all(self) -> int: ...
    async def discard(self, message_id: str) -> None: ...
    async def trace(self, message_id: str) -> list[TraceStep]: ...
    async def outbox(self) -> list[OutboxItemView]: ...
    async def mark_read(self, chat_id: str) -> ChatView: ...
    async def groups(self) -> list[GroupView]: ...
    async def group(self, group_id: str) -> GroupView: ...
    async def create_group(self, name: str, members: list[str]) -> GroupView: ...
    async def rename_group(self, group_id: str, name: str) -> GroupView: ...
    async def add_group_member(self, group_id: str, chat_key: str) -> GroupView: ...
    async def remove_group_member(self, group_id: str, chat_key: str) -> GroupView: ...
    async def grant_group_admin(self, group_id: str, chat_key: str) -> GroupView: ...
    async def leave_group(self, group_id: str) -> GroupView: ...
    async def invites(self) -> list[InviteView]: ...
    async def accept_invite(self, invite_id: str) -> InviteView: ...
    async def decline_invite(self, invite_id: str) -> InviteView: ...
    def health(self) -> HealthView: ...
    async def reconnect_now(self) -> HealthView: ...
    async def bandwidth(self) -> BandwidthView: ...
    def subscribe(self, buffer: int = 1000) -> Subscription: ...


def _views(views: list[Any]) -> Response:
    return json_response([to_json(v) for v in views])


class Handlers(CommunityHandlers):
    def __init__(
        self, messenger: MessengerFace, *, keepalive: float = sse.KEEPALIVE_INTERVAL
    ) -> None:
        self._m = messenger
        self._keepalive = keepalive

    def routes(self) -> list[Route]:
        return [Route(method, path, getattr(self, name)) for method, path, name in ROUTES]

    async def identity(self, request: Request) -> Response:
        return json_response(to_json(self._m.identity()))

    async def set_identity(self, request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"display_name"}))
        name = text_field(body, "display_name", required=True) or ""
        return json_response(to_json(await self._m.set_display_name(name)))

    async def health(self, request: Request) -> Response:
        return json_response(to_json(self._m.health()))

    async def bandwidth(self, request: Request) -> Response:
        return json_response(to_json(await self._m.bandwidth()))

    async def reconnect(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return json_response(to_json(await self._m.reconnect_now()), 202)

    async def list_contacts(self, request: Request) -> Response:
        return _views(await self._m.contacts())

    async def add_contact(self, request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"link", "message"}))
        link = text_field(body, "link", required=True) or ""
        intro = text_field(body, "message", required=False) or ""
        return json_response(to_json(await self._m.add_contact(link, intro)), 202)

    async def accept_contact(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return json_response(to_json(await self._m.accept_contact(request.params["chat_key"])))

    async def decline_contact(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return json_response(to_json(await self._m.decline_contact(request.params["chat_key"])))

    async def cancel_contact_request(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        chat_key = request.params["chat_key"]
        return json_response(to_json(await self._m.cancel_contact_request(chat_key)))

    async def verification(self, request: Request) -> Response:
        # NotFound (404) for anyone who is not a contact, as every other
        # /v1/contacts/{chat_key} path says.
        return json_response(to_json(self._m.verification(request.params["chat_key"])))

    async def start_verification(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        chat_key = request.params["chat_key"]
        return json_response(to_json(await self._m.start_verification(chat_key)))

    async def confirm_verification(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        chat_key = request.params["chat_key"]
        return json_response(to_json(await self._m.confirm_verification(chat_key)))

    async def cancel_verification(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        chat_key = request.params["chat_key"]
        return json_response(to_json(await self._m.cancel_verification(chat_key)))

    async def list_chats(self, request: Request) -> Response:
        return _views(await self._m.chats())

    async def mark_read(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return json_response(to_json(await self._m.mark_read(request.params["id"])))

    async def list_messages(self, request: Request) -> Response:
        limit = request.query_int("limit", default=DEFAULT_PAGE, low=1, high=MAX_PAGE)
        before = request.query.get("before") or None
        after = request.query.get("after") or None
        page = await self._m.messages(request.params["id"], limit=limit, before=before, after=after)
        return _views(page)

    async def search(self, request: Request) -> Response:
        limit = request.query_int(
            "limit", default=DEFAULT_SEARCH_RESULTS, low=1, high=MAX_SEARCH_RESULTS
        )
        query = request.query.get("q", "")
        chat_id = request.query.get("chat") or None
        return _views(await self._m.search(query, chat_id=chat_id, limit=limit))

    async def send_message(self, request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"text", "reply_to"}))
        text = text_field(body, "text", required=True) or ""
        reply_to = text_field(body, "reply_to", required=False)
        message = await self._m.send_text(request.params["id"], text, reply_to=reply_to)
        return json_response(to_json(message), 202)

    async def get_message(self, request: Request) -> Response:
        return json_response(to_json(await self._m.message(request.params["id"])))

    async def retry_message(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return json_response(to_json(await self._m.retry(request.params["id"])), 202)

    async def discard_message(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        await self._m.discard(request.params["id"])
        return no_content()

    async def trace_message(self, request: Request) -> Response:
        return _views(await self._m.trace(request.params["id"]))

    async def outbox(self, request: Request) -> Response:
        return _views(await self._m.outbox())

    async def retry_all(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return json_response({"retried": await self._m.retry_all()}, 202)

    # ---- private groups ------------------------------------------------------------------
    async def list_groups(self, request: Request) -> Response:
        return _views(await self._m.groups())

    async def create_group(self, request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"name", "members"}))
        name = text_field(body, "name", required=True) or ""
        members = text_list_field(body, "members", required=False, max_items=MAX_MEMBERS)
        return json_response(to_json(await self._m.create_group(name, members)), 201)

    async def get_group(self, request: Request) -> Response:
        return json_response(to_json(await self._m.group(request.params["id"])))

    async def rename_group(self, request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"name"}))
        name = text_field(body, "name", required=True) or ""
        return json_response(to_json(await self._m.rename_group(request.params["id"], name)))

    async def add_group_member(self, request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"chat_key"}))
        chat_key = text_field(body, "chat_key", required=True) or ""
        group = await self._m.add_group_member(request.params["id"], chat_key)
        return json_response(to_json(group))

    async def remove_group_member(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        params = request.params
        group = await self._m.remove_group_member(params["id"], params["chat_key"])
        return json_response(to_json(group))

    async def grant_group_admin(self, request: Request) -> Response:
        body = request.json_object(allowed=frozenset({"chat_key"}))
        chat_key = text_field(body, "chat_key", required=True) or ""
        group = await self._m.grant_group_admin(request.params["id"], chat_key)
        return json_response(to_json(group))

    async def leave_group(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return json_response(to_json(await self._m.leave_group(request.params["id"])))

    async def list_invites(self, request: Request) -> Response:
        return _views(await self._m.invites())

    async def accept_invite(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return json_response(to_json(await self._m.accept_invite(request.params["id"])))

    async def decline_invite(self, request: Request) -> Response:
        request.json_object(allowed=frozenset())
        return json_response(to_json(await self._m.decline_invite(request.params["id"])))

    async def events(self, request: Request) -> StreamResponse:
        return StreamResponse(
            produce=self._relay_events,
            content_type=sse.CONTENT_TYPE,
            headers=((b"x-accel-buffering", b"no"),),
        )

    async def _relay_events(self, send: SendChunk) -> None:
        # Subscribed before the first send, which carries the response head: the client
        # misses nothing after it sees the response. Closed (the messenger forgets it) as
        # soon as the stream ends, however it ends.
        with self._m.subscribe(EVENT_BUFFER) as channel:
            await send(sse.comment_frame("connected"))
            while True:
                with trio.move_on_after(self._keepalive) as idle:
                    try:
                        event = await channel.receive()
                    except trio.EndOfChannel:
                        return  # the messenger stopped
                if idle.cancelled_caught:
                    await send(sse.comment_frame("keep-alive"))
                else:
                    await send(sse.event_frame(event.kind, event.to_json()))
