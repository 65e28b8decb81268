"""Never two dials to one peer at once (issue 15 item 2, and the slow link of
docs/architecture.md): a dial may take the driver's whole limit, and the core, which counts
a dial with no reported outcome as failed after its own timeout, then plans the peer again
within the short offline interval. The driver lets the running dial finish instead of
starting a second one.

The peer here accepts TCP and never says a word (as a peer behind a very slow, lossy link
looks for a while), so every dial to it hangs until the driver gives up; what it accepts
is counted."""

from __future__ import annotations

import itertools
import random
import socket

import pytest
import trio
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.waku.host import generate_node_key
from chat.waku.node import Node, NodeConfig
from chat.waku.peer_manager import PeerManagerService
from chat.waku.peers import PeerPolicy

CORE_TIMEOUT = 0.5
DRIVER_TIMEOUT = 3.0


@pytest.mark.slow
async def test_a_dial_the_core_timed_out_is_left_to_finish_before_the_next() -> None:
    accepted: list[float] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        silent = trio.socket.from_stdlib_socket(listener)
        peer = ID.from_pubkey(generate_node_key().public_key).to_base58()
        policy = PeerPolicy(
            relay_peers_per_shard=1,
            service_targets={},
            dial_timeout=CORE_TIMEOUT,
            offline_redial=0.2,
        )
        client = Node(NodeConfig(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")], shards=(0,)))
        peers = PeerManagerService(
            (0,), policy=policy, rng=random.Random(1), tick_interval=0.1,
            dial_timeout=DRIVER_TIMEOUT,
        )  # fmt: skip
        peers.add_address(f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer}")
        held: list[trio.socket.SocketType] = []

        async def accept_and_keep_quiet() -> None:
            while True:
                connection, _ = await silent.accept()
                held.append(connection)
                accepted.append(trio.current_time())

        await client.mount(peers)
        async with trio.open_nursery() as nursery, client.run():
            nursery.start_soon(accept_and_keep_quiet)
            started = trio.current_time()
            await trio.sleep(2 * DRIVER_TIMEOUT + 0.5)
            nursery.cancel_scope.cancel()
        for connection in held:
            connection.close()
    # The core planned the peer again and again (its timeout is 0.5 s, the offline interval
    # 0.2 s); each dial still took the driver's 3 s, one after another.
    assert peers.core.dials_started > len(accepted)
    starts = [at - started for at in accepted]
    assert 2 <= len(starts) <= 3, starts
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert all(gap >= DRIVER_TIMEOUT - 0.5 for gap in gaps), starts
