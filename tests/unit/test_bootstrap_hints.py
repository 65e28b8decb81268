"""Bootstrap hints (chat/waku/discovery/bootstrap.py): what a community link hands out, and
which received hints are dialled."""

from __future__ import annotations

import pytest
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.waku.discovery.bootstrap import (
    LOOPBACK,
    PRIVATE,
    PUBLIC,
    BootstrapError,
    parse_bootstrap,
    pick_bootstrap,
    reach,
)
from chat.waku.host import generate_node_key


def peer() -> ID:
    return ID.from_pubkey(generate_node_key().public_key)


@pytest.mark.parametrize(
    ("addr", "level"),
    [
        ("/ip4/127.0.0.1/tcp/60000", LOOPBACK),
        ("/ip4/192.168.1.5/tcp/60000", PRIVATE),
        ("/ip4/203.0.113.7/tcp/60000", PRIVATE),  # documentation range: not global
        ("/ip4/8.8.8.8/tcp/60000", PUBLIC),
        ("/dns4/node.example.org/tcp/60000", PUBLIC),
        ("/ip6/::1/tcp/60000", LOOPBACK),
        ("/ip4/0.0.0.0/tcp/60000", None),
        ("/ip4/8.8.8.8/udp/60000", None),
    ],
)
def test_reach_of_an_address(addr: str, level: int | None) -> None:
    assert reach(Multiaddr(addr)) == level


def test_one_address_per_peer_public_only_when_there_are_any_and_bounded() -> None:
    lan, public, other = peer(), peer(), peer()
    picked = pick_bootstrap(
        [
            (lan, [Multiaddr("/ip4/10.0.0.2/tcp/1"), Multiaddr("/ip4/0.0.0.0/tcp/1")]),
            (public, [Multiaddr("/ip4/127.0.0.1/tcp/2"), Multiaddr("/ip4/8.8.4.4/tcp/2")]),
            (other, [Multiaddr("/dns4/relay.example.org/tcp/3")]),
        ],
        limit=4,
        max_length=256,
    )
    assert picked == [
        f"/ip4/8.8.4.4/tcp/2/p2p/{public}",
        f"/dns4/relay.example.org/tcp/3/p2p/{other}",
    ]
    assert (
        len(
            pick_bootstrap(
                [(p, [Multiaddr("/ip4/8.8.8.8/tcp/1")]) for p in (lan, public, other)], 2, 256
            )
        )
        == 2
    )
    assert pick_bootstrap([(lan, [Multiaddr("/ip4/8.8.8.8/tcp/1")])], 4, max_length=20) == []


def test_on_loopback_loopback_is_what_there_is() -> None:
    only = peer()
    picked = pick_bootstrap([(only, [Multiaddr("/ip4/127.0.0.1/tcp/5")])], 4, 256)
    assert picked == [f"/ip4/127.0.0.1/tcp/5/p2p/{only}"]


def test_a_hint_parses_to_peer_and_address_or_says_why_not() -> None:
    someone = peer()
    assert parse_bootstrap(f"/ip4/8.8.8.8/tcp/7/p2p/{someone}") == (
        someone,
        Multiaddr("/ip4/8.8.8.8/tcp/7"),
    )
    for bad in (
        "not a multiaddr",
        "/ip4/8.8.8.8/tcp/7",
        f"/ip4/0.0.0.0/tcp/7/p2p/{someone}",
        f"/ip4/8.8.8.8/udp/7/p2p/{someone}",
        "/ip4/8.8.8.8/tcp/7/p2p/notapeer",
    ):
        with pytest.raises(BootstrapError):
            parse_bootstrap(bad)
