"""Finding a community's shard when one's own fleet does not serve it, on real nodes over
loopback: through the bootstrap hints a community link carries, and through a rendezvous
point (one namespace per shard)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from harness.live_communities import (
    address_of,
    bootstrap_of,
    fetched,
    received_requests,
    role_in,
    serve_shard,
    start_other_service,
    without_bootstrap,
)
from harness.waiting import wait_until
from libp2p.peer.id import ID

from chat.client_node import ClientNode
from chat.communities.link import CommunityLink
from chat.messenger import Messenger
from chat.waku.discovery.rendezvous import RendezvousPoint, ShardRendezvous
from chat.waku.host import generate_node_key
from chat.waku.service_node import ServiceNode

pytestmark = pytest.mark.slow

COMMUNITY_SHARD = 77


def connected_to(messenger: Messenger, service: ServiceNode) -> bool:
    """The messenger has a connection to the service node (a relay client: a ClientNode)."""
    return service.node.host.peer_id in messenger.node.connected_peers()


def knows_point(messenger: Messenger, point: ServiceNode) -> bool:
    node = messenger.node
    assert isinstance(node, ClientNode) and node.connectivity.rendezvous is not None
    return point.node.host.peer_id in node.connectivity.rendezvous.points(node.node.host)


async def accepted(owner: Messenger, joiner: Messenger, community_id: str) -> None:
    [request] = await received_requests(owner, community_id, 1)
    await owner.accept_community_request(request.id)

    async def member() -> bool:
        return await role_in(joiner, community_id) == "member"

    await wait_until(member, 60)


async def test_a_joiner_whose_fleet_lacks_the_shard_finds_it_through_the_links_bootstrap(
    net: Any,
) -> None:
    """Alice's service node serves her community's shard; Bob's fleet is another service
    node that does not, and the two are not connected. Bob reaches the shard (and joins)
    only through the service node the link names; the hints before it (one that does not
    parse, a wildcard, one nobody answers at) are logged and skipped."""
    alice_service = await net.start_service()
    bob_service = await start_other_service(net, "bob-service")
    alice = await net.start("alice")
    bob = await net.start("bob", peers=(address_of(bob_service),))
    await wait_until(lambda: connected_to(alice, alice_service), 30)
    community = await alice.create_community("Moths", "", "approval", shard=COMMUNITY_SHARD)
    serve_shard(alice_service, community)

    async def link_names_the_service() -> bool:
        link, _qr = await alice.community_link(community.id)
        return bootstrap_of(link) == (address_of(alice_service),)

    await wait_until(link_names_the_service, 30)
    link, _qr = await alice.community_link(community.id)
    assert not connected_to(bob, alice_service)
    stranger = ID.from_pubkey(generate_node_key().public_key)
    bad_hints = (
        "not a multiaddr",
        f"/ip4/0.0.0.0/tcp/9/p2p/{stranger}",
        f"/ip4/127.0.0.1/tcp/1/p2p/{stranger}",  # refused: nobody listens there
    )
    hinted = replace(CommunityLink.parse(link), bootstrap=(*bad_hints, *bootstrap_of(link)))

    found = await fetched(bob, hinted.encode(), within=30)
    assert found.community is not None and found.community.name == "Moths"
    assert connected_to(bob, alice_service)
    assert alice_service.node.host.peer_id not in bob_service.node.host.connected_peers()
    await bob.join_community(link, "moths please")
    await accepted(alice, bob, community.id)


async def test_members_find_the_communitys_shard_through_a_rendezvous_point(net: Any) -> None:
    """Alice and Bob know only a rendezvous point that does not serve the community's shard;
    a service node serving it is registered there. Alice creating the community and Bob
    opening a link without bootstrap hints both find it through rendezvous."""
    point = await net.start_service()
    await point.node.mount(RendezvousPoint())
    registrar = ShardRendezvous(
        point.node.config.cluster_id, (COMMUNITY_SHARD,), _ignore, discover_interval=0.5
    )
    shard_service = await start_other_service(net, "shard-service", services=(registrar,))
    alice = await net.start("alice")
    bob = await net.start("bob")
    await shard_service.node.host.dial(address_of(point))
    # Both have identified the point as one (the rendezvous client asks only those).
    await wait_until(lambda: knows_point(alice, point) and knows_point(bob, point), 30)
    await wait_until(lambda: registrar.registrations > 0, 30)
    community = await alice.create_community("Bats", "", "approval", shard=COMMUNITY_SHARD)
    serve_shard(shard_service, community)
    await wait_until(lambda: connected_to(alice, shard_service), 30)

    link, _qr = await alice.community_link(community.id)
    bare_link = without_bootstrap(link)
    found = await fetched(bob, bare_link, within=30)
    assert found.community is not None and found.community.name == "Bats"
    assert connected_to(bob, shard_service)
    await bob.join_community(bare_link, "bats please")
    await accepted(alice, bob, community.id)


def _ignore(_peer: object) -> None:
    """The service node only registers; what it discovers is not used here."""
