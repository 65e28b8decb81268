"""How the TUI words communities: the channel mark, a channel message's state ("seen by n",
never a false "delivered" in a channel of hundreds), the shard and its protection, the fetch
and join-request states. Pure functions of views and an injected `now`."""

from __future__ import annotations

from chat.events import CommunityFetchView, CommunityRequestView, CommunityView, MessageView
from ui.format import STATE_WORDS, in_how_long, in_words, state_glyph

CHANNEL_MARK = "◆"
"""Before a community channel's name in the chat list and the title."""
CHANNEL_STATE_WIDTH = 13
"""A channel's state column: the glyph, 'seen by ' and up to three digits, a space."""
ROLE_ORDER = {"owner": 0, "admin": 1, "member": 2}
POLICY_WORDS = {"approval": "join by request (an owner or admin accepts)", "open": "open"}
REQUEST_STATE_WORDS = {
    "pending": "pending",
    "accepted": "accepted",
    "declined": "declined",
    "cancelled": "cancelled",
    "expired": "expired",
}


def channel_status(message: MessageView) -> str:
    """'↑', '✓', '✓ seen by 3': how far an outgoing channel message got. The pipeline's
    'delivered' (every member acknowledged) is shown as what it is, the count of members
    who saw it, after the stored tick: the members change, the count is what we know."""
    if not message.outgoing:
        return ""
    state = "stored" if message.state == "delivered" else message.state
    glyph = state_glyph(state)
    seen = len(message.delivered_to)
    return f"{glyph.ljust(1)} seen by {seen}" if seen and state != "queued" else glyph


def channel_delivery(message: MessageView) -> str:
    """An outgoing channel message's state in words, for its trace: how far it got and how
    many members acknowledged it (never 'delivered: your contact acknowledged it')."""
    state = "stored" if message.state == "delivered" else message.state
    words = STATE_WORDS.get(state, state)
    if state in ("queued", "failed"):
        return words
    seen = len(message.delivered_to)
    return f"{words}; seen by {seen} member{'s' if seen != 1 else ''} so far"


def shard_index(pubsub_topic: str) -> str:
    """'/waku/2/rs/16/5' → '5'; anything else unchanged."""
    prefix, _, index = pubsub_topic.rpartition("/")
    return index if prefix.startswith("/waku/2/rs/") and index.isdigit() else pubsub_topic


def protection_words(community: CommunityView) -> str:
    """'shard 5 · protected (key 02ab12cd…)' or 'shard 0 · shared, unprotected'."""
    where = f"shard {shard_index(community.shard)}"
    if community.protection_key:
        return f"{where} · protected (key {community.protection_key[:12]}…)"
    return f"{where} · shared, unprotected"


def community_title(community: CommunityView, channel_id: str) -> str:
    """'◆ Birders #general  ·  3 members  ·  shard 5 · protected (key …)'."""
    channel = next((c.name for c in community.channels if c.id == channel_id), "?")
    count = len(community.members)
    plural = "s" if count != 1 else ""
    return (
        f"{CHANNEL_MARK} {community.name} #{channel}  ·  {count} member{plural}  ·  "
        f"{protection_words(community)}"
    )


def last_seen_words(at: float | None, now: float) -> str:
    if at is None:
        return "owner not seen yet"
    return f"owner last seen {in_words(max(0.0, now - at))} ago"


def request_words(request: CommunityRequestView, now: float) -> str:
    """A join request's state with what a person waiting needs to know: the owner's last
    sign of life, when it expires, when it is sent again, or why it ended."""
    words = REQUEST_STATE_WORDS.get(request.state, request.state)
    if request.state == "pending":
        parts = [words]
        if request.direction == "sent":
            parts.append(last_seen_words(request.owner_last_seen, now))
            parts.append(f"sent {request.sends}×, next {in_how_long(request.next_send_at, now)}")
        if request.expires_at is not None:
            parts.append(f"expires {in_how_long(request.expires_at, now)}")
        return "; ".join(parts)
    if request.state_reason:
        return f"{words}: {request.state_reason}"
    return words


def fetch_words(fetch: CommunityFetchView, now: float) -> str:
    """The fetch of a community's description by its link, as a sentence."""
    if fetch.state == "fetching":
        waited = in_words(max(0.0, now - fetch.started_at)) if fetch.started_at else "0 s"
        return f"Fetching the community's description… ({waited})"
    if fetch.state == "found" and fetch.community is not None:
        community = fetch.community
        return (
            f"Found {community.name}: {len(community.members)} member(s), "
            f"{POLICY_WORDS.get(community.join_policy, community.join_policy)}; "
            f"{protection_words(community)}."
        )
    reason = fetch.reason or "no reason given"
    label = "Not found" if fetch.state == "not_found" else "Timed out"
    return f"{label}: {reason}. Ctrl+R tries again."
