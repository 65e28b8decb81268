"""Timeouts that a slow, lossy link needs (found by tests/integration/connectivity/
test_impaired_network.py: over 1 s ± 100 ms and 30 % loss a dial takes 10-20 s, and 10 s
dials failed one after another until the test gave up)."""

from __future__ import annotations

from multiaddr import Multiaddr

from chat.waku.host import UPGRADE_TIMEOUT, WakuHost, generate_node_key
from chat.waku.peer_manager import PeerManagerService
from chat.waku.peers import PeerPolicy


def test_a_dial_attempt_lasts_as_long_as_the_peer_policy_says() -> None:
    assert PeerManagerService([0]).dial_timeout == PeerPolicy().dial_timeout >= 30.0


def test_noise_and_muxer_negotiation_may_take_as_long_as_a_dial_on_either_side() -> None:
    host = WakuHost(generate_node_key(), [Multiaddr("/ip4/127.0.0.1/tcp/0")])
    config = host.libp2p.get_network().connection_config  # type: ignore[attr-defined]
    assert config.outbound_upgrade_timeout == config.inbound_upgrade_timeout == UPGRADE_TIMEOUT
    assert PeerPolicy().dial_timeout <= UPGRADE_TIMEOUT
    assert config.max_connections_per_peer == 1
