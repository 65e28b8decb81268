"""`chinwag serve --clock-offset` (the lab's clock_skew fault) on real processes: a client
whose clock is 2 min ahead stamps its messages 2 min ahead and the service node takes them;
one 400 s ahead, past the ±5 min every relay allows, has its messages ignored by the node."""

from __future__ import annotations

import time

import httpx
import pytest
from harness.processes import Chinwag
from harness.waiting import wait_until

from chat.communities.shards import DEFAULT_SHARED_SHARD

pytestmark = pytest.mark.slow


async def ignored_out_of_window(metrics_url: str) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(metrics_url)).text
    return sum(
        int(float(line.rpartition(" ")[2]))
        for line in text.splitlines()
        if line.startswith("chinwag_relay_validation_total{")
        and 'outcome="ignore"' in line
        and "out_of_window" in line
    )


async def post_in_own_channel(http: httpx.AsyncClient) -> dict[str, object]:
    body = {"name": "clock", "channels": ["general"], "shared_shard": True}
    created = await http.post("/v1/communities", json=body)
    assert created.status_code == 201, created.text
    channel = created.json()["channels"][0]["id"]
    sent = await http.post(f"/v1/chats/{channel}/messages", json={"text": "what time is it"})
    assert sent.status_code == 202, sent.text
    message: dict[str, object] = sent.json()
    return message


async def test_a_skewed_client_stamps_its_messages_and_past_5_min_the_node_ignores_them(
    chinwag: Chinwag,
) -> None:
    shards = ("--shard", "0", "--shard", "1", "--shard", str(DEFAULT_SHARED_SHARD))
    node = await chinwag.start_node(extra=shards)
    for name in ("ahead", "far"):
        chinwag.create_profile(name)
    ahead = await chinwag.serve("ahead", node.addr, extra=["--clock-offset", "120"])
    far = await chinwag.serve("far", node.addr, extra=["--clock-offset", "400"])
    await node.wait_for_mesh(2)
    async with ahead.client() as http:
        message = await post_in_own_channel(http)
        assert float(str(message["timestamp"])) == pytest.approx(time.time() + 120, abs=10)
    assert await ignored_out_of_window(node.metrics_url) == 0
    async with far.client() as http:
        message = await post_in_own_channel(http)
        assert float(str(message["timestamp"])) == pytest.approx(time.time() + 400, abs=10)

    async def ignored() -> bool:
        return await ignored_out_of_window(node.metrics_url) > 0

    await wait_until(ignored, 30)
