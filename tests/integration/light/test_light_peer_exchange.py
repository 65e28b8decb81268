"""A light client told of one service node finds the others by peer exchange, and holds its
subscriptions on two of them."""

from __future__ import annotations

import pytest
from harness.light_network import LightNet, light_node, light_ready
from harness.waiting import wait_until

pytestmark = pytest.mark.slow


async def test_a_light_client_given_one_service_node_finds_more_by_peer_exchange(
    light_net: LightNet,
) -> None:
    await light_net.start_services(3)
    first = light_net.service_addr("service-a")
    lena = await light_net.start("lena", light=True, peers=(first,))
    light = light_node(lena)
    others = {
        str(light_net.services[name].node.host.peer_id) for name in ("service-b", "service-c")
    }

    async def found() -> bool:
        return others <= set(light.core.candidates)

    await wait_until(found, 30)
    await wait_until(lambda: light_ready(lena), 30)
    assert len(light.filter.core.active_peers) == 2
    assert len(light.push.pool.active) == 2
