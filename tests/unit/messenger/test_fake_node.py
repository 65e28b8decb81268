"""The fake node offers everything the messenger uses of a node. (That the client node does
is checked statically: mypy checks ClientNode against MessengerNode in chat/messenger.)"""

from __future__ import annotations

from harness.fake_node import FakeNetwork

from chat.messenger.node import MessengerNode


def test_the_fake_node_offers_every_member_the_messenger_uses() -> None:
    wanted = {name for name in vars(MessengerNode) if not name.startswith("_")}
    assert {"publish", "inbox", "store", "health", "wait_relay_peers"} <= wanted
    network = FakeNetwork()
    fake = network.node("alice")
    assert {m for m in wanted if not hasattr(fake, m)} == set()
    network.close()
