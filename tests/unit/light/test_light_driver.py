"""The light node's driver on a MockClock: it follows the messenger's topics, and asks for
more service nodes again soon while none is connected. The node is built but not started
(no sockets); only the driver runs."""

from __future__ import annotations

import trio
import trio.testing
from libp2p.peer.id import ID

from chat.light_node import INTEREST_POLL, LightClientNode, LightNodeConfig
from chat.waku.host import generate_node_key
from chat.waku.light.core import EXCHANGE_RETRY

PUBSUB = "/waku/2/rs/42/0"


def service_addr() -> str:
    peer = ID.from_pubkey(generate_node_key().public_key)
    return f"/ip4/127.0.0.1/tcp/1/p2p/{peer.to_base58()}"


async def test_the_driver_follows_the_topics_and_retries_peer_exchange_soon(
    autojump_clock: trio.testing.MockClock,
) -> None:
    node = LightClientNode(LightNodeConfig(peers=(service_addr(),)))
    wanted = {(PUBSUB, "/chinwag/1/a/proto")}
    node.follow_interest(lambda: set(wanted))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node.drive, nursery)
        await trio.sleep(0.01)
        assert node.filter.core.wanted == wanted
        assert node.core.next_exchange() == EXCHANGE_RETRY  # nobody to ask yet: again soon
        wanted.add((PUBSUB, "/chinwag/1/b/proto"))
        wanted.discard((PUBSUB, "/chinwag/1/a/proto"))
        await trio.sleep(INTEREST_POLL)
        assert node.filter.core.wanted == {(PUBSUB, "/chinwag/1/b/proto")}
        await trio.sleep(EXCHANGE_RETRY)
        assert node.core.next_exchange() == 2 * EXCHANGE_RETRY
        nursery.cancel_scope.cancel()
