"""The OpenAPI 3.0 document of the REST API, as data. Served at `GET /openapi.json` (the one
path that needs no token). Response schemas are derived from the view dataclasses in
chat/events.py, so they cannot drift from what the handlers send; the operations follow
chat/api/handlers.ROUTES (a test holds the two equal)."""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from typing import Any

from chat import __version__
from chat.api.limits import IDLE_TIMEOUT, MAX_CONNECTIONS_PER_SOURCE, REQUEST_READ_TIMEOUT
from chat.api.openapi_communities import (
    COMMUNITY_FIELD_DESCRIPTIONS,
    COMMUNITY_OTHER_SCHEMAS,
    COMMUNITY_REQUEST_SCHEMAS,
    COMMUNITY_VIEWS,
    Builders,
    community_paths,
)
from chat.api.protocol import MAX_BODY_BYTES, json_bytes
from chat.api.sse import KEEPALIVE_INTERVAL
from chat.events import (
    BandwidthLineView,
    BandwidthView,
    ChatView,
    ContactView,
    GroupMemberView,
    GroupView,
    HealthView,
    IdentityView,
    InviteView,
    MessageView,
    OutboxItemView,
    SearchResultView,
    TraceStep,
    VerificationView,
    json_name,
)
from chat.groups.changes import MAX_GROUP_NAME
from chat.groups.log import MAX_MEMBERS
from chat.history import MAX_SEARCH_RESULTS
from chat.identity import MAX_DISPLAY_NAME
from chat.messenger import MAX_INTRO_LENGTH, MAX_TEXT_LENGTH

OPENAPI_VERSION = "3.0.3"
VIEWS: tuple[type, ...] = (
    IdentityView,
    ContactView,
    ChatView,
    MessageView,
    TraceStep,
    OutboxItemView,
    HealthView,
    VerificationView,
    GroupView,
    GroupMemberView,
    InviteView,
    SearchResultView,
    BandwidthLineView,
    BandwidthView,
    *COMMUNITY_VIEWS,
)

DESCRIPTION = f"""\
The headless chinwag client (`chinwag serve`): the messenger's commands and events over HTTP.

**Authentication.** Every path except `/openapi.json` needs the profile's API token as
`Authorization: Bearer <token>`; `chinwag serve` prints it on start (it is kept in the
profile directory, file `api-token`, mode 0600, and reused across runs). Without it: 401.

**Errors** are JSON `{{"error": "<sentence>"}}`: 400 bad input (malformed JSON, unknown
fields, a value the messenger refuses, a string that is not Unicode text), 401 no or wrong
token, 403 a group change that needs an admin, by a member who is none, 404 no such path,
chat, contact, message, group or invitation, 405 method not allowed (with `Allow`), 408
a request that took over {REQUEST_READ_TIMEOUT:.0f} s to arrive, 409 not possible in the current
state, 413 a body over {MAX_BODY_BYTES} bytes, 503 too many busy connections from one address
(with `Retry-After`), 505 a protocol other than HTTP/1.1.

**Text.** Strings in request bodies are Unicode: a JSON surrogate pair (`\\ud83d\\ude00`) is
joined into its character; a lone surrogate is a 400 naming the field.

**HTTP/1.1 only** (HTTP/2 is not offered). A connection may stay idle
{IDLE_TIMEOUT:.0f} s between requests; one address may hold {MAX_CONNECTIONS_PER_SOURCE}
connections, and so {MAX_CONNECTIONS_PER_SOURCE} requests in flight.

**Sending is asynchronous.** A message or contact request is queued (202) and goes out when
it can; follow its `state` (queued, sent, stored, delivered, failed) with
`GET /v1/messages/{{id}}`, its evidence with `/trace`, or live with `GET /v1/events`. In a
group, a message is `delivered` when every recipient still a member acknowledged it:
`recipients` says how many it went to, `delivered_to` who has acknowledged it so far.

**Private groups** (`/v1/groups`) are chats of `kind` "group": the group's id is its chat id,
its messages go through `/v1/chats/{{id}}/messages`. Members are contacts invited by an admin;
an invitation (`/v1/invites`) is joined or declined by its invitee, or expires.

**Times** are Unix seconds (numbers)."""

EVENTS_DESCRIPTION = f"""\
Server-sent events (`text/event-stream`): one event per messenger event from the moment of
connecting, `event: <kind>` and `data: <json>`, the JSON being the event with its `kind`.
Kinds: message_added and message_updated (`message`: a MessageView), contact_updated
(`contact`), verification_updated (`verification`), chat_updated (`chat`), health_updated
(`health`), group_updated (`group`: a GroupView, after any change of its members, admins or
name), invite_updated (`invite`: an InviteView, sent or received), messages_lost (`chat_id`,
`count`), rejected (`reason`), stranger_requests_dropped (`dropped`: contact requests from
strangers dropped by spam protection since the profile began, `held`: those kept now; at most
every few seconds, and kept requests may have been dropped: read the contacts again). A
comment line is sent after {KEEPALIVE_INTERVAL:.0f} s without
events. The stream ends when the server stops; a client that falls far behind loses events
(the messenger logs how many)."""

FIELD_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "ContactView": {
        "state": "request_sent, request_received, mutual, declined, ... (chat.contacts)",
        "chat_id": "the 1:1 chat, once the request is mutual",
        "intro": "the intro text of the current request (theirs or ours)",
        "next_send_at": "when our open request is re-sent next",
        "sends": "how often our current request went out",
    },
    "ChatView": {"kind": "'direct', 'group' or 'channel' (a community's channel)"},
    "MessageView": {
        "sender": "the sender's chat key (ours for outgoing messages)",
        "timestamp": "the sender's clock at sending time",
        "state": "outgoing: queued, sent, stored, delivered, failed; incoming: received",
        "state_reason": "why the message is in its state (for failed: the last error)",
        "kind": "'text', or 'system': a line about the chat (a join, a leave, a rename)",
        "recipients": "outgoing: how many members it was sent to (1 in a 1:1 chat)",
        "delivered_to": "outgoing: the chat keys of the recipients who acknowledged it",
    },
    "GroupView": {
        "id": "the group's id, also its chat id",
        "admins": "chat keys of the members who may add, remove and rename",
        "members": "everyone the group's membership log names, with their state",
        "my_state": "our own state in the group: joined, left or removed",
        "undecryptable": "messages on the group's topic we could not decrypt since start",
    },
    "GroupMemberView": {
        "state": "joined, invited, expired, declined, left or removed",
        "display_name": "the name in the member's own signed contact link",
    },
    "InviteView": {
        "from": "who invited (a chat key)",
        "to": "who is invited (a chat key)",
        "direction": "'received' (someone invited us) or 'sent' (we invited a contact)",
        "state": "invited, joined, declined, expired, cancelled or failed",
        "reason": "why it failed (a sent invitation that reached nobody)",
        "next_send_at": "sent and open: when the invitation goes out again",
    },
    "TraceStep": {"evidence": "what proved the step: peers reached, the store node that "
                  "confirmed, the acknowledgement's source, the error of a failed attempt"},
    "OutboxItemView": {"id": "the message id (kind 'message') or the contact's chat key "
                       "(kind 'contact_request')"},
    "SearchResultView": {
        "text": "the whole message",
        "snippet": "the part of the message around the matched words ('…' where it goes on)",
        "highlights": "where the matched words are in `snippet`: [start, end) offsets in "
                      "characters (code points)",
        "sender": "the sender's chat key (ours for outgoing messages)",
    },
    "HealthView": {
        "status": "online, degraded, offline or sleeping",
        "peers_per_shard": "relay peers per pubsub topic",
        "store_reachable": "null until a store node was asked at all",
        "outbox": "messages not yet delivered or failed",
        "stranger_requests_dropped": "contact requests from strangers dropped by spam "
                                     "protection (over the rate limit, or over the cap of "
                                     "those kept) since the profile began",
        "stranger_requests_held": "contact requests from strangers kept, waiting for an answer",
        "dialing": "dials to peers under way",
        "next_dial_at": "while no peer is connected: when the next known peer is dialled "
                        "(at most 10 s apart; POST /v1/health/reconnect dials at once); null "
                        "when online, while every known peer is being dialled, or when none "
                        "is known",
        "known_peers": "peers chinwag knows to dial: configured (--peer, fleet file, config) "
                       "or discovered",
        "mode": "relay, or light (filter, light push and store from service nodes)",
        "light_services": "light mode: service nodes held (filter_held of filter_wanted, "
                          "push_held of push_wanted); empty in relay mode",
        "light_line": "light mode: the services held, e.g. 'filter 2/2, push 2/2, store ok'",
        "enr": "this node's record as enr: text (EIP-778 with the Waku fields); empty before "
               "it listens",
    },
}  # fmt: skip


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def schema_for(annotation: Any) -> dict[str, Any]:
    """The JSON schema of a view field's type (as `to_json` renders it)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"cannot describe {annotation!r}")
        return {**schema_for(rest[0]), "nullable": True}
    if origin is dict:
        return {"type": "object", "additionalProperties": schema_for(args[1])}
    if origin is list:
        return {"type": "array", "items": schema_for(args[0])}
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(set(args)) != 1:
            raise TypeError(f"cannot describe {annotation!r}")
        items = schema_for(args[0])
        return {"type": "array", "items": items, "minItems": len(args), "maxItems": len(args)}
    if annotation is Any:
        return {}
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _ref(annotation.__name__)
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if annotation in simple:
        return {"type": simple[annotation]}
    raise TypeError(f"cannot describe {annotation!r}")


def view_schema(view: type) -> dict[str, Any]:
    hints = typing.get_type_hints(view)
    notes = FIELD_DESCRIPTIONS.get(view.__name__) or COMMUNITY_FIELD_DESCRIPTIONS.get(
        view.__name__, {}
    )
    properties: dict[str, Any] = {}
    for item in dataclasses.fields(view):
        schema = schema_for(hints[item.name])
        name = json_name(item.name)
        if name in notes:
            schema["description"] = notes[name]
        properties[name] = schema
    return {"type": "object", "required": list(properties), "properties": properties}


ERRORS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
}
ERROR_TEXT = {
    400: "bad input: malformed JSON, an unknown field, a value the messenger refuses",
    401: "no token, or a wrong one",
    403: "a group change that needs an admin, by a member who is none",
    404: "no such chat, contact, message, group or invitation",
    405: "this path does not take this method",
    409: "not possible in the current state",
    413: f"the request body is over {MAX_BODY_BYTES} bytes",
}
ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
    405: {"Allow": {"schema": {"type": "string"}}},
}


def _error_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, name in ERRORS.items():
        response: dict[str, Any] = {
            "description": ERROR_TEXT[status],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        if status in ERROR_HEADERS:
            response["headers"] = ERROR_HEADERS[status]
        responses[name] = response
    return responses


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list_of(view: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(view)}


_CHAT_KEY = {
    "name": "chat_key",
    "in": "path",
    "required": True,
    "description": "the contact's chat key (cw1...)",
    "schema": {"type": "string"},
}
_CHAT_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "a chat id (32 hex characters)",
    "schema": {"type": "string"},
}
_MESSAGE_ID = {**_CHAT_ID, "description": "a message id (unique across chats)"}
_GROUP_ID = {**_CHAT_ID, "description": "a group id (also its chat id, 32 hex characters)"}
_MEMBER_KEY = {**_CHAT_KEY, "description": "a member's chat key (cw1...)"}
_INVITE_ID = {**_CHAT_ID, "description": "an invitation id"}
_PAGE = (
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "how many messages at most (the newest ones before `before`)",
        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
    },
    {
        "name": "before",
        "in": "query",
        "required": False,
        "description": "a message id: only messages older than it",
        "schema": {"type": "string"},
    },
    {
        "name": "after",
        "in": "query",
        "required": False,
        "description": "a message id: the oldest messages newer than it (reading on from a "
        "search result); not with `before`",
        "schema": {"type": "string"},
    },
)
_SEARCH = (
    {
        "name": "q",
        "in": "query",
        "required": True,
        "description": "the words to find: every one must occur, in any order; `word*` "
        "matches words starting with it; case and accents are ignored. Nothing typed is "
        "read as query syntax. At most 200 characters and 16 words.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    {
        "name": "chat",
        "in": "query",
        "required": False,
        "description": "a chat id: search this chat only (default: every chat)",
        "schema": {"type": "string"},
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "how many results at most, best match first",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH_RESULTS, "default": 20},
    },
)


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _operation(
    operation_id: str,
    summary: str,
    ok: tuple[int, dict[str, Any]],
    errors: tuple[int, ...] = (),
    *,
    parameters: tuple[dict[str, Any], ...] = (),
    body: str | None = None,
    tag: str,
) -> dict[str, Any]:
    status, response = ok
    responses: dict[str, Any] = {str(status): response}
    for code in sorted({401, *errors, *((400, 413) if body else ())}):
        responses[str(code)] = {"$ref": f"#/components/responses/{ERRORS[code]}"}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = list(parameters)
    if body:
        operation["requestBody"] = _body(body)
    return operation


PATHS: dict[str, dict[str, dict[str, Any]]] = {
    "/v1/identity": {
        "get": _operation(
            "identity", "Our chat key, display name and contact link",
            (200, _json(_ref("IdentityView"), "who we are")), tag="identity"),
        "put": {**_operation(
            "set_identity", "Change our display name",
            (200, _json(_ref("IdentityView"), "who we are now")),
            body="SetIdentity", tag="identity"),
            "description": "The name is cleaned like every displayed name (control and "
            "invisible characters removed, whitespace collapsed); empty or over "
            f"{MAX_DISPLAY_NAME} characters is 400. Our contact link carries the new name, "
            "and every contact is told (one we cannot reach now learns it from the store)."},
    },
    "/v1/health": {"get": _operation(
        "health", "Connectivity: peers, store reachability, outbox size",
        (200, _json(_ref("HealthView"), "the current health")), tag="health")},
    "/v1/health/reconnect": {"post": {**_operation(
        "reconnect", "Dial every known peer now instead of at its next scheduled dial",
        (202, _json(_ref("HealthView"), "the dials are under way (`dialing`)")), (409,),
        tag="health"),
        "description": "While offline chinwag redials known peers every few seconds (at most "
        "10 s apart, `next_dial_at`); this dials at once. A peer already being dialled is "
        "left to finish (never two dials to one peer). 409 when chinwag knows no peer "
        "to dial (none configured, none discovered)."}},
    "/v1/bandwidth": {"get": {**_operation(
        "bandwidth", "Bytes in and out per protocol and per relay message kind",
        (200, _json(_ref("BandwidthView"), "the bandwidth meter now")), tag="health"),
        "description": "Totals since the node started and rates (bytes per second) over the "
        "last minute and hour, per libp2p protocol (by the stream's protocol id) and, for "
        "relay, per message kind: gossip control, subscriptions, chat messages, receipts and "
        "SDS syncs (`sync`), contact and join requests, and `message` for a content topic "
        "this client does not know. `wire` is every connection byte after the handshake, "
        "`transport` the part no stream carried (Noise and muxer framing)."}},
    "/v1/contacts": {
        "get": _operation(
            "list_contacts", "Every contact and contact request",
            (200, _json(_list_of("ContactView"), "the contacts")), tag="contacts"),
        "post": {**_operation(
            "add_contact", "Send a contact request to the owner of a contact link",
            (202, _json(_ref("ContactView"), "the request is queued")), (409,),
            body="AddContact", tag="contacts"),
            "description": "Asking again while our request is open sends nothing: the open "
            "request is returned as it is, and goes out again on its own schedule "
            "(`next_send_at`). Asking someone who asked us accepts them."},
    },
    "/v1/contacts/{chat_key}/accept": {"post": _operation(
        "accept_contact", "Accept a contact request we received",
        (200, _json(_ref("ContactView"), "the contact")), (400, 404, 409),
        parameters=(_CHAT_KEY,), tag="contacts")},
    "/v1/contacts/{chat_key}/decline": {"post": _operation(
        "decline_contact", "Decline a contact request we received",
        (200, _json(_ref("ContactView"), "the contact")), (400, 404, 409),
        parameters=(_CHAT_KEY,), tag="contacts")},
    "/v1/contacts/{chat_key}/cancel": {"post": _operation(
        "cancel_contact_request", "Withdraw a contact request we sent (they are told)",
        (200, _json(_ref("ContactView"), "the contact")), (400, 404, 409),
        parameters=(_CHAT_KEY,), tag="contacts")},
    "/v1/contacts/{chat_key}/verification": {"get": _operation(
        "verification", "The emoji verification with a contact, if any",
        (200, _json(_ref("VerificationView"), "its state")), (400, 404),
        parameters=(_CHAT_KEY,), tag="verification")},
    "/v1/contacts/{chat_key}/verification/start": {"post": _operation(
        "start_verification", "Begin comparing emoji with a contact (both online)",
        (200, _json(_ref("VerificationView"), "started")), (400, 404, 409),
        parameters=(_CHAT_KEY,), tag="verification")},
    "/v1/contacts/{chat_key}/verification/confirm": {"post": _operation(
        "confirm_verification", "The emoji on both screens match",
        (200, _json(_ref("VerificationView"), "confirmed")), (400, 404, 409),
        parameters=(_CHAT_KEY,), tag="verification")},
    "/v1/contacts/{chat_key}/verification/cancel": {"post": _operation(
        "cancel_verification", "The emoji differ, or stop: tell the contact",
        (200, _json(_ref("VerificationView"), "cancelled")), (400, 404, 409),
        parameters=(_CHAT_KEY,), tag="verification")},
    "/v1/chats": {"get": _operation(
        "list_chats", "Every chat, most recent activity first",
        (200, _json(_list_of("ChatView"), "the chats")), tag="chats")},
    "/v1/chats/{id}/read": {"post": _operation(
        "mark_read", "Mark a chat read",
        (200, _json(_ref("ChatView"), "the chat")), (400, 404, 409),
        parameters=(_CHAT_ID,), tag="chats")},
    "/v1/chats/{id}/messages": {
        "get": _operation(
            "list_messages", "A page of a chat's messages, oldest first",
            (200, _json(_list_of("MessageView"), "the messages")), (400, 404),
            parameters=(_CHAT_ID, *_PAGE), tag="messages"),
        "post": _operation(
            "send_message", "Queue a text message; it goes out as soon as it can",
            (202, _json(_ref("MessageView"), "the message, queued")), (404, 409),
            parameters=(_CHAT_ID,), body="SendMessage", tag="messages"),
    },
    "/v1/messages/{id}": {"get": _operation(
        "get_message", "One message and its delivery state",
        (200, _json(_ref("MessageView"), "the message")), (400, 404),
        parameters=(_MESSAGE_ID,), tag="messages")},
    "/v1/messages/{id}/retry": {"post": _operation(
        "retry_message", "Send a failed or waiting message again now",
        (202, _json(_ref("MessageView"), "the message, queued again")), (400, 404, 409),
        parameters=(_MESSAGE_ID,), tag="messages")},
    "/v1/messages/{id}/discard": {"post": _operation(
        "discard_message", "Drop a queued or failed message from the outbox",
        (204, {"description": "dropped"}), (400, 404, 409),
        parameters=(_MESSAGE_ID,), tag="messages")},
    "/v1/messages/{id}/trace": {"get": _operation(
        "trace_message", "Every state transition of a message, with time and evidence",
        (200, _json(_list_of("TraceStep"), "the transitions, oldest first")), (400, 404),
        parameters=(_MESSAGE_ID,), tag="messages")},
    "/v1/search": {"get": {**_operation(
        "search", "Find messages by their words, in every chat or one",
        (200, _json(_list_of("SearchResultView"), "the matches, best first")), (400, 404),
        parameters=_SEARCH, tag="messages"),
        "description": "Full-text search over every message in the profile (its FTS5 index): "
        "ranked by relevance (bm25), newest first among equals, each with the words around "
        "the match. A query with no word, too long, or that the index cannot search is a "
        "400 with a sentence; an unknown chat is a 404. Read on from a result with "
        "`GET /v1/chats/{id}/messages?after=<message_id>`."}},
    "/v1/outbox": {"get": _operation(
        "outbox", "What is waiting to go out or failed: messages and contact requests",
        (200, _json(_list_of("OutboxItemView"), "the outbox")), tag="outbox")},
    "/v1/outbox/retry": {"post": _operation(
        "retry_all", "Retry everything in the outbox now",
        (202, _json(_ref("RetryAll"), "how many were queued again")), tag="outbox")},
    "/v1/groups": {
        "get": _operation(
            "list_groups", "Every private group we are or were in",
            (200, _json(_list_of("GroupView"), "the groups")), tag="groups"),
        "post": {**_operation(
            "create_group", "Create a private group and invite contacts to it",
            (201, _json(_ref("GroupView"), "the group (its id is its chat id)")), (409,),
            body="CreateGroup", tag="groups"),
            "description": "We are its creator and first admin. Each member must be a "
            "mutual contact (else 409); each gets an invitation (see /v1/invites) and is "
            "listed as invited until they join or decline."},
    },
    "/v1/groups/{id}": {
        "get": _operation(
            "get_group", "A group: its name, admins and members with their state",
            (200, _json(_ref("GroupView"), "the group")), (400, 404),
            parameters=(_GROUP_ID,), tag="groups"),
        "put": _operation(
            "rename_group", "Rename a group (admins only)",
            (200, _json(_ref("GroupView"), "the group")), (403, 404, 409),
            parameters=(_GROUP_ID,), body="RenameGroup", tag="groups"),
    },
    "/v1/groups/{id}/members": {"post": {**_operation(
        "add_group_member", "Invite a contact to a group (admins only)",
        (200, _json(_ref("GroupView"), "the group")), (403, 404, 409),
        parameters=(_GROUP_ID,), body="GroupMember", tag="groups"),
        "description": "Inviting someone whose invitation failed or expired sends it again; "
        "someone already a member or invited is a 409."}},
    "/v1/groups/{id}/members/{chat_key}": {"delete": {**_operation(
        "remove_group_member", "Remove a member, or withdraw an invitation (admins only)",
        (200, _json(_ref("GroupView"), "the group")), (400, 403, 404, 409),
        parameters=(_GROUP_ID, _MEMBER_KEY), tag="groups"),
        "description": "Our next message goes in a new Megolm session the removed member "
        "cannot read; every other member rotates theirs when they learn of the removal."}},
    "/v1/groups/{id}/admins": {"post": _operation(
        "grant_group_admin", "Make a member an admin (admins only)",
        (200, _json(_ref("GroupView"), "the group")), (403, 404, 409),
        parameters=(_GROUP_ID,), body="GroupMember", tag="groups")},
    "/v1/groups/{id}/leave": {"post": _operation(
        "leave_group", "Leave a group (the others are told)",
        (200, _json(_ref("GroupView"), "the group")), (400, 404, 409),
        parameters=(_GROUP_ID,), tag="groups")},
    "/v1/invites": {"get": _operation(
        "list_invites", "Group invitations, received and sent, newest first",
        (200, _json(_list_of("InviteView"), "the invitations")), tag="invites")},
    "/v1/invites/{id}/accept": {"post": _operation(
        "accept_invite", "Join the group of an invitation we received",
        (200, _json(_ref("InviteView"), "the invitation")), (400, 404, 409),
        parameters=(_INVITE_ID,), tag="invites")},
    "/v1/invites/{id}/decline": {"post": _operation(
        "decline_invite", "Decline an invitation we received (the group is told)",
        (200, _json(_ref("InviteView"), "the invitation")), (400, 404, 409),
        parameters=(_INVITE_ID,), tag="invites")},
    "/v1/events": {"get": {
        **_operation(
            "events", "Live messenger events (server-sent events)",
            (200, {"description": "an endless event stream",
                   "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
            tag="events"),
        "description": EVENTS_DESCRIPTION,
    }},
    "/openapi.json": {"get": {
        "operationId": "openapi",
        "summary": "This document (no token needed)",
        "tags": ["meta"],
        "security": [],
        "responses": {"200": {"description": "the OpenAPI document",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }},
}  # fmt: skip

REQUEST_SCHEMAS: dict[str, dict[str, Any]] = {
    "SetIdentity": {
        "type": "object",
        "required": ["display_name"],
        "additionalProperties": False,
        "properties": {
            "display_name": {
                "type": "string",
                "description": "the name contacts see next to our messages",
            },
        },
    },
    "AddContact": {
        "type": "object",
        "required": ["link"],
        "additionalProperties": False,
        "properties": {
            "link": {"type": "string", "description": "the contact link (text or URL form)"},
            "message": {
                "type": "string",
                "description": "an intro shown with the request: at most "
                f"{MAX_INTRO_LENGTH} characters once cleaned (control and invisible "
                "characters removed); a longer one is a 400, never cut",
            },
        },
    },
    "SendMessage": {
        "type": "object",
        "required": ["text"],
        "additionalProperties": False,
        "properties": {
            "text": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_TEXT_LENGTH,
                "description": "needs visible text: only invisible characters is a 400",
            },
            "reply_to": {
                "type": "string",
                "nullable": True,
                "description": "the id of a message of this chat that this one answers "
                "(any other id is a 400)",
            },
        },
    },
    "CreateGroup": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "description": f"at most {MAX_GROUP_NAME} characters once cleaned (control "
                "and invisible characters removed); empty or longer is a 400",
            },
            "members": {
                "type": "array",
                "nullable": True,
                "maxItems": MAX_MEMBERS - 1,
                "items": {"type": "string"},
                "description": "chat keys of mutual contacts to invite (a group has at most "
                f"{MAX_MEMBERS} members, us included)",
            },
        },
    },
    "RenameGroup": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "description": f"at most {MAX_GROUP_NAME} characters once cleaned",
            },
        },
    },
    "GroupMember": {
        "type": "object",
        "required": ["chat_key"],
        "additionalProperties": False,
        "properties": {
            "chat_key": {"type": "string", "description": "a mutual contact's chat key"},
        },
    },
}
OTHER_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "a sentence for a person"}},
    },
    "RetryAll": {
        "type": "object",
        "required": ["retried"],
        "properties": {"retried": {"type": "integer", "minimum": 0}},
    },
}


LINKS: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {
    ("/v1/chats/{id}/messages", "post", "202"): {
        name: {"operationId": target, "parameters": {"id": "$response.body#/id"}}
        for name, target in (
            ("GetMessage", "get_message"),
            ("TraceMessage", "trace_message"),
            ("RetryMessage", "retry_message"),
            ("DiscardMessage", "discard_message"),
        )
    },
    ("/v1/chats", "get", "200"): {
        name: {"operationId": target, "parameters": {"id": "$response.body#/0/id"}}
        for name, target in (
            ("ListMessages", "list_messages"),
            ("SendMessage", "send_message"),
            ("MarkRead", "mark_read"),
        )
    },
    ("/v1/contacts", "post", "202"): {
        "CancelRequest": {
            "operationId": "cancel_contact_request",
            "parameters": {"chat_key": "$response.body#/chat_key"},
        }
    },
    ("/v1/contacts", "get", "200"): {
        name: {"operationId": target, "parameters": {"chat_key": "$response.body#/0/chat_key"}}
        for name, target in (
            ("AcceptFirst", "accept_contact"),
            ("DeclineFirst", "decline_contact"),
            ("CancelFirst", "cancel_contact_request"),
        )
    },
    ("/v1/groups", "post", "201"): {
        name: {"operationId": target, "parameters": {"id": "$response.body#/id"}}
        for name, target in (
            ("GetGroup", "get_group"),
            ("RenameGroup", "rename_group"),
            ("ListGroupMessages", "list_messages"),
            ("SendToGroup", "send_message"),
            ("LeaveGroup", "leave_group"),
        )
    },
}
"""OpenAPI links: where an id that one operation returns can be used next."""


def _paths() -> dict[str, Any]:
    builders = Builders(_operation, _json, _ref, _list_of, _CHAT_ID, _MEMBER_KEY)
    paths = copy.deepcopy({**PATHS, **community_paths(builders)})
    for (path, method, status), links in LINKS.items():
        paths[path][method]["responses"][status]["links"] = links
    return paths


def document() -> dict[str, Any]:
    """A fresh copy: callers may change it without touching the module's tables."""
    schemas = {view.__name__: view_schema(view) for view in VIEWS}
    return copy.deepcopy(
        {
            "openapi": OPENAPI_VERSION,
            "info": {
                "title": "chinwag REST API",
                "version": __version__,
                "description": DESCRIPTION,
            },
            "security": [{"bearerAuth": []}],
            "paths": _paths(),
            "components": {
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "the token `chinwag serve` prints (file `api-token` in the "
                        "profile directory)",
                    }
                },
                "schemas": {
                    **schemas,
                    **REQUEST_SCHEMAS,
                    **COMMUNITY_REQUEST_SCHEMAS,
                    **OTHER_SCHEMAS,
                    **COMMUNITY_OTHER_SCHEMAS,
                },
                "responses": _error_responses(),
            },
        }
    )


def document_bytes() -> bytes:
    return json_bytes(document())
