"""The words the community screens use: a channel message's "seen by n" (never a claim of
delivery to everyone), the shard and its protection, a join request's state and a fetch's."""

from __future__ import annotations

from chat.events import CommunityFetchView, CommunityRequestView, CommunityView, MessageView
from ui.community_format import (
    channel_delivery,
    channel_status,
    community_title,
    fetch_words,
    protection_words,
    request_words,
)

NOW = 1_800_000_000.0


def mine(state: str, seen: int) -> MessageView:
    return MessageView(
        id="m1",
        chat_id="c1",
        sender="me",
        text="hello",
        outgoing=True,
        timestamp=NOW,
        state=state,
        recipients=5,
        delivered_to=[f"member{i}" for i in range(seen)],
    )


def community(protection_key: str = "02" + "ab" * 32) -> CommunityView:
    return CommunityView(
        id="b" * 64,
        name="Birders",
        about="",
        join_policy="approval",
        shard="/waku/2/rs/16/7",
        protection_key=protection_key,
        channels=[],
        members=[],
        my_role="owner",
    )


def test_a_channel_message_says_how_many_saw_it_never_delivered() -> None:
    assert channel_status(mine("queued", 0)) == "◷"
    assert channel_status(mine("sent", 0)) == "↑"
    assert channel_status(mine("stored", 2)) == "✓ seen by 2"
    assert channel_status(mine("delivered", 5)) == "✓ seen by 5"  # no ✓✓ in a channel
    assert channel_delivery(mine("delivered", 5)) == (
        "stored: a store node has it; seen by 5 members so far"
    )
    assert channel_delivery(mine("sent", 1)) == (
        "sent: relayed to at least one peer; seen by 1 member so far"
    )
    incoming = MessageView("m2", "c1", "them", "hi", False, NOW, "received")
    assert channel_status(incoming) == ""


def test_the_shard_and_its_protection_in_words() -> None:
    assert protection_words(community()) == "shard 7 · protected (key 02ababababab…)"
    assert protection_words(community("")) == "shard 7 · shared, unprotected"
    assert community_title(community(), "x").startswith("◆ Birders #?  ·  0 members  ·  shard 7")


def test_a_pending_request_says_owner_last_seen_next_send_and_expiry() -> None:
    pending = CommunityRequestView(
        id="r1",
        community_id="b" * 64,
        chat_key="cw1me",
        display_name="Alice",
        direction="sent",
        state="pending",
        state_reason=None,
        owner_last_seen=NOW - 240,
        expires_at=NOW + 23 * 3600,
        sends=2,
        next_send_at=NOW + 30,
    )
    assert request_words(pending, NOW) == (
        "pending; owner last seen 4 min ago; sent 2×, next in 30 s; expires in 23 h"
    )
    never = CommunityRequestView(
        "r2", "b" * 64, "cw1me", "Alice", "sent", "pending", None, None, None
    )
    assert "owner not seen yet" in request_words(never, NOW)
    expired = CommunityRequestView(
        "r3", "b" * 64, "cw1me", "Alice", "sent", "expired", "no answer in 24 h", NOW, NOW
    )
    assert request_words(expired, NOW) == "expired: no answer in 24 h"


def test_a_fetch_in_words_with_the_reason_and_how_to_retry() -> None:
    fetching = CommunityFetchView("b" * 64, "fetching", started_at=NOW - 3)
    assert fetch_words(fetching, NOW) == "Fetching the community's description… (3 s)"
    found = CommunityFetchView("b" * 64, "found", community=community())
    assert fetch_words(found, NOW).startswith("Found Birders: 0 member(s), join by request")
    failed = CommunityFetchView("b" * 64, "timed_out", reason="no relay peer on its shard")
    assert fetch_words(failed, NOW) == (
        "Timed out: no relay peer on its shard. Ctrl+R tries again."
    )
