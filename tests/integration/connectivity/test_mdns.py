"""Two nodes with no fleet and no --peer find each other over mDNS on loopback and chat;
a node of another cluster on the same LAN is never dialled."""

from __future__ import annotations

import random
import socket
import struct
from typing import Any

import pytest
import trio
from harness.waiting import wait_until
from multiaddr import Multiaddr

from chat.waku.discovery.mdns.core import Discovered
from chat.waku.discovery.mdns.service import MdnsService
from chat.waku.discovery.mdns.wire import MDNS_GROUP
from chat.waku.peer_manager import PeerManagerService

DEADLINE = 20
TOPIC = "/waku/2/rs/42/0"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_multicast_problem(port: int) -> str | None:
    """Why multicast on loopback does not work here (None when it does)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("", port))
            group = struct.pack("4s4s", socket.inet_aton(MDNS_GROUP), socket.inet_aton("127.0.0.1"))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
            s.settimeout(2.0)
            s.sendto(b"probe", (MDNS_GROUP, port))
            data, _ = s.recvfrom(64)
            return None if data == b"probe" else "an unexpected packet came back"
    except OSError as exc:
        return f"multicast on 127.0.0.1 is not permitted here: {exc}"


@pytest.fixture
def mdns_port() -> int:
    port = free_udp_port()
    problem = loopback_multicast_problem(port)
    if problem:
        pytest.skip(problem)
    return port


def mdns_for(client: Any, cluster: int, port: int) -> MdnsService:
    peers: PeerManagerService = client.peers

    def found(peer: Discovered) -> None:
        peers.add_discovered(peer.peer_id, [Multiaddr(a) for a in peer.addrs])

    return MdnsService(cluster, found, interfaces=["127.0.0.1"], port=port, rng=random.Random(port))


async def test_two_nodes_find_each_other_over_mdns_and_chat(
    mdns_port: int, client_class: Any, make_message: Any
) -> None:
    alice, bob = client_class(), client_class()
    stranger = client_class()  # same LAN, another cluster
    services = [mdns_for(alice, 42, mdns_port), mdns_for(bob, 42, mdns_port)]
    foreign = mdns_for(stranger, 4242, mdns_port)
    with trio.fail_after(DEADLINE):
        for client, service in ((alice, services[0]), (bob, services[1]), (stranger, foreign)):
            await client.node.mount(service)
        async with stranger.running(), alice.running(), bob.running():
            bob_id, alice_id = str(bob.node.host.peer_id), str(alice.node.host.peer_id)
            await wait_until(lambda: alice.meshed_with(bob_id) and bob.meshed_with(alice_id))
            alice.relay.publish(TOPIC, make_message("found you"))
            await wait_until(lambda: b"found you" in bob.received)
            # The mDNS packets count as discovery in the bandwidth meter.
            discovery = alice.node.host.bandwidth.snapshot(trio.current_time()).protocols[6]
            assert discovery.name == "discovery"
            assert discovery.bytes_in > 0 and discovery.bytes_out > 0
            # The stranger answers alice's queries too (at 0, 1 and 3 s); she drops it.
            core = services[0].core
            assert core is not None
            await wait_until(lambda: core.other_cluster > 0)
            assert str(stranger.node.host.peer_id) not in {
                str(p) for p in alice.peers.connected_peers() + bob.peers.connected_peers()
            }
            assert foreign.discovered == 0
