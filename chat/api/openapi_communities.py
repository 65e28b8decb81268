"""The community part of the OpenAPI document (chat/api/openapi.py merges it): the paths of
chat/api/community_handlers.COMMUNITY_ROUTES, their request bodies and the views they send.
The builders are openapi.py's, passed in (`Builders`), so both parts render alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chat.communities.description import MAX_ABOUT, MAX_CHANNELS, MAX_NAME, MAX_SHARD
from chat.communities.join import MAX_REQUEST_MESSAGE
from chat.events import (
    CommunityChannelView,
    CommunityFetchView,
    CommunityMemberView,
    CommunityRequestView,
    CommunityView,
)

COMMUNITY_VIEWS: tuple[type, ...] = (
    CommunityView,
    CommunityMemberView,
    CommunityChannelView,
    CommunityFetchView,
    CommunityRequestView,
)

COMMUNITY_FIELD_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "CommunityView": {
        "id": "derived from the community's owner key (32 hex characters)",
        "shard": "the community's shard (pubsub topic)",
        "protection_key": "the shard's protection public key (hex); empty: an unprotected "
                          "shared shard",
        "channels": "the channels; a channel's id is its chat id",
        "my_role": "owner, admin, member, or none (fetched, not joined)",
        "owner_last_seen": "when something the owner signed last reached us (Unix seconds)",
        "version": "the version of the newest validly signed description we hold",
        "epoch": "the content key's epoch (a kick or ban starts a new one)",
    },
    "CommunityFetchView": {
        "state": "fetching, found, not_found or timed_out (fetch again to retry)",
        "reason": "why it was not found or timed out",
    },
    "CommunityRequestView": {
        "direction": "'sent' (we asked) or 'received' (to a community we moderate)",
        "state": "pending, accepted, declined, cancelled or expired",
        "state_reason": "why it expired or was declined",
        "owner_last_seen": "sent: when something the owner signed last reached us",
    },
}  # fmt: skip


@dataclass(frozen=True)
class Builders:
    operation: Callable[..., dict[str, Any]]
    json: Callable[[dict[str, Any], str], dict[str, Any]]
    ref: Callable[[str], dict[str, Any]]
    list_of: Callable[[str], dict[str, Any]]
    path_id: dict[str, Any]
    path_key: dict[str, Any]


def community_paths(b: Builders) -> dict[str, dict[str, dict[str, Any]]]:
    community_id = {**b.path_id, "description": "a community id (32 hex characters)"}
    request_id = {**b.path_id, "description": "a join request id (32 hex characters)"}
    member_key = {**b.path_key, "description": "a member's chat key (cw1...)"}
    channel_id = {
        **b.path_key,
        "name": "channel_id",
        "description": "a channel id (also its chat id)",
    }
    community = (200, b.json(b.ref("CommunityView"), "the community as it is now"))
    one_request = (200, b.json(b.ref("CommunityRequestView"), "the request"))
    tag = "communities"
    return {
        "/v1/communities": {
            "get": b.operation(
                "list_communities", "Every community we own or joined",
                (200, b.json(b.list_of("CommunityView"), "the communities")), tag=tag),
            "post": {**b.operation(
                "create_community", "Create a community on a shard of its own",
                (201, b.json(b.ref("CommunityView"), "the community (we own it)")),
                (409,), body="CreateCommunity", tag=tag),
                "description": "A free shard of the community range is taken (or `shard`, "
                "or the shared unprotected shard with `shared_shard`), with a new protection "
                "key pair; everything we publish there is signed with it."},
        },
        "/v1/communities/fetch": {"post": b.operation(
            "fetch_community", "Look a community up by its link",
            (200, b.json(b.ref("CommunityFetchView"), "where the fetch stands")),
            (409,), body="CommunityLinkBody", tag=tag)},
        "/v1/communities/join": {"post": b.operation(
            "join_community", "Ask to join a community (to its owner and admins)",
            (202, b.json(b.ref("CommunityRequestView"), "the request (pending)")),
            (409,), body="JoinCommunity", tag=tag)},
        "/v1/communities/requests": {"get": b.operation(
            "list_community_requests", "Join requests, sent and received",
            (200, b.json(b.list_of("CommunityRequestView"), "the requests")), tag=tag)},
        "/v1/communities/requests/{id}/accept": {"post": b.operation(
            "accept_community_request", "Accept a join request (owner and admins)",
            one_request, (400, 403, 404, 409), parameters=(request_id,), tag=tag)},
        "/v1/communities/requests/{id}/decline": {"post": b.operation(
            "decline_community_request", "Decline a join request (owner and admins)",
            one_request, (400, 403, 404, 409), parameters=(request_id,), tag=tag)},
        "/v1/communities/requests/{id}/cancel": {"post": b.operation(
            "cancel_community_request", "Withdraw our join request",
            one_request, (400, 404, 409), parameters=(request_id,), tag=tag)},
        "/v1/communities/{id}": {
            "get": b.operation(
                "get_community", "A community: description, channels, members and roles",
                community, (400, 404), parameters=(community_id,), tag=tag),
            "put": {**b.operation(
                "edit_community", "Change the name and/or about text (owner and admins)",
                community, (403, 404, 409), parameters=(community_id,), body="EditCommunity",
                tag=tag),
                "description": "The next description, signed and published: every member "
                "adopts it; a field left out stays as it is."},
        },
        "/v1/communities/{id}/link": {"get": b.operation(
            "community_link", "The community's link (text and a text QR code)",
            (200, b.json(b.ref("CommunityLink"), "the link")), (400, 404),
            parameters=(community_id,), tag=tag)},
        "/v1/communities/{id}/channels": {"post": b.operation(
            "add_community_channel", "Create a channel (owner and admins)",
            community, (403, 404, 409), parameters=(community_id,), body="CommunityChannel",
            tag=tag)},
        "/v1/communities/{id}/channels/{channel_id}": {"delete": {**b.operation(
            "remove_community_channel", "Remove a channel (owner and admins)",
            community, (400, 403, 404, 409), parameters=(community_id, channel_id), tag=tag),
            "description": "Nobody can write in it any more and it leaves every member's "
            "chat list (GET /v1/chats); its messages are not deleted from members' devices."}},
        "/v1/communities/{id}/members/{chat_key}/kick": {"post": b.operation(
            "kick_community_member", "Remove a member (a new content key epoch)",
            community, (400, 403, 404, 409), parameters=(community_id, member_key), tag=tag)},
        "/v1/communities/{id}/members/{chat_key}/ban": {"post": b.operation(
            "ban_community_member", "Ban a member (a new content key and shard key)",
            community, (400, 403, 404, 409), parameters=(community_id, member_key), tag=tag)},
        "/v1/communities/{id}/members/{chat_key}": {"put": b.operation(
            "set_community_role", "Grant or revoke admin (the owner only)",
            community, (403, 404, 409), parameters=(community_id, member_key),
            body="CommunityRole", tag=tag)},
        "/v1/communities/{id}/leave": {"post": b.operation(
            "leave_community", "Stop reading and serving a community",
            community, (400, 404, 409), parameters=(community_id,), tag=tag)},
    }  # fmt: skip


def _text(description: str, *, min_length: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "description": description}
    if min_length:
        schema["minLength"] = min_length
    return schema


COMMUNITY_REQUEST_SCHEMAS: dict[str, dict[str, Any]] = {
    "CreateCommunity": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": _text(f"at most {MAX_NAME} characters once cleaned", min_length=1),
            "about": _text(f"at most {MAX_ABOUT} characters once cleaned"),
            "join_policy": {"type": "string", "enum": ["open", "approval"],
                            "description": "open: answered at once; approval (default)"},
            "channels": {"type": "array", "nullable": True, "maxItems": MAX_CHANNELS,
                         "items": {"type": "string"},
                         "description": "channel names (default: one, 'general')"},
            "shard": {"type": "integer", "nullable": True, "minimum": 0, "maximum": MAX_SHARD,
                      "description": "a free shard of the community range to use"},
            "shared_shard": {"type": "boolean", "nullable": True,
                             "description": "on the shared unprotected shard (QA runs)"},
        },
    },
    "CommunityLinkBody": {
        "type": "object",
        "required": ["link"],
        "additionalProperties": False,
        "properties": {"link": _text("a community link (chinwag-community:...)")},
    },
    "JoinCommunity": {
        "type": "object",
        "required": ["link"],
        "additionalProperties": False,
        "properties": {
            "link": _text("a community link (chinwag-community:...)"),
            "message": _text(f"shown to the moderators (at most {MAX_REQUEST_MESSAGE} "
                             "characters are kept)"),
        },
    },
    "CommunityChannel": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {"name": _text(f"at most {MAX_NAME} characters", min_length=1)},
    },
    "EditCommunity": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "description": "at least one of the two; a field left out or null stays as it is",
        "properties": {
            "name": {**_text(f"at most {MAX_NAME} characters once cleaned", min_length=1),
                     "nullable": True},
            "about": {**_text(f"at most {MAX_ABOUT} characters once cleaned"),
                      "nullable": True},
        },
    },
    "CommunityRole": {
        "type": "object",
        "required": ["role"],
        "additionalProperties": False,
        "properties": {"role": {"type": "string", "enum": ["admin", "member"]}},
    },
}  # fmt: skip

COMMUNITY_OTHER_SCHEMAS: dict[str, dict[str, Any]] = {
    "CommunityLink": {
        "type": "object",
        "required": ["link", "qr"],
        "properties": {
            "link": {"type": "string", "description": "chinwag-community:..."},
            "qr": {"type": "string", "description": "the link as a QR code in text"},
        },
    },
}
