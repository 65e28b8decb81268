"""Community links: text round trip, tolerance for terminal framing, clear errors."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
from harness.communities import new_community, person

from chat.communities.link import (
    LINK_SCHEME,
    MAX_BOOTSTRAP_ADDRESS,
    MAX_COMMUNITY_LINK,
    CommunityLink,
    LinkError,
)


def test_a_link_round_trips_and_names_the_community() -> None:
    community = new_community(person("alice"))
    link = CommunityLink.of(community.description, ("/ip4/127.0.0.1/tcp/60000/p2p/16Uiu2",))
    text = link.encode()
    assert text.startswith(LINK_SCHEME)
    parsed = CommunityLink.parse(text)
    assert parsed == link
    assert parsed.community_id == community.description.id
    assert parsed.name == "Test community"
    assert (parsed.cluster_id, parsed.shard) == (16, 200)


def test_a_link_copied_off_a_framed_screen_still_parses() -> None:
    text = CommunityLink.of(new_community(person("alice")).description).encode()
    wrapped = "│ " + text[:40] + " │\n│ " + text[40:] + " │"
    assert CommunityLink.parse(wrapped).encode() == text


def test_a_link_renders_as_a_qr_code() -> None:
    qr = CommunityLink.of(new_community(person("alice")).description).qr()
    assert "█" in qr and len(qr.splitlines()) > 10


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("chinwag:abc", "not a chinwag community link"),
        (LINK_SCHEME + "!!!", "damaged"),
        (LINK_SCHEME + base64.urlsafe_b64encode(b"\x08\x09").decode(), "newer chinwag"),
        (LINK_SCHEME + "A" * 3000, "too long"),
        (LINK_SCHEME + base64.urlsafe_b64encode(b"\x08\x01").decode(), "damaged"),
    ],
)
def test_bad_links_are_clear_errors(text: str, reason: str) -> None:
    with pytest.raises(LinkError, match=reason):
        CommunityLink.parse(text)


def test_bootstrap_hints_are_bounded_and_the_longest_link_still_parses() -> None:
    description = new_community(person("alice")).description
    longest = "/dns4/" + "a" * 215 + ".example.org/tcp/60000/p2p/16Uiu2"
    assert len(longest) <= MAX_BOOTSTRAP_ADDRESS
    hints = ("/ip4/8.8.8.8/tcp/1/p2p/" + "x" * 300,) + (longest,) * 5
    # The longest name (64 four-byte characters) with four of the longest hints.
    link = CommunityLink.of(replace(description, name="\U0001d11e" * 64), hints)
    assert link.bootstrap == (longest,) * 4
    assert len(link.encode()) <= MAX_COMMUNITY_LINK
    assert CommunityLink.parse(link.encode()) == link
