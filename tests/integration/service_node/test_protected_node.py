"""The real `chinwag node --protected-shard 7:PUBKEY` as a subprocess: it serves shard 7 (not
in its --shard list), rejects what an outsider publishes there, forwards and archives only the
member's signed messages, and shows the rejections on /metrics by shard and reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import pytest
import trio
from harness.processes import Chinwag
from harness.protected_shard import MINUTE_NS, PROTECTED, SHARD, Member, message
from harness.waiting import wait_until

from chat.waku.message import now_ns
from chat.waku.protected import ShardKeyPair

DEADLINE = 60
REJECTIONS = "chinwag_relay_protected_rejections_total"
Scrape = Callable[[str], Awaitable[dict[str, float]]]


@pytest.mark.slow
async def test_chinwag_node_protects_its_shard(chinwag: Chinwag, scrape: Scrape) -> None:
    owner, impostor = ShardKeyPair.generate(), ShardKeyPair.generate()
    member, outsider, subscriber = Member("member"), Member("outsider"), Member("subscriber")
    member.relay.sign_with(PROTECTED, owner)
    with trio.fail_after(DEADLINE):
        node = await chinwag.start_node(
            extra=["--shard", "0", "--protected-shard", f"{SHARD}:{owner.public_key.to_hex()}"]
        )
        async with AsyncExitStack() as stack:
            for peer in (member, outsider, subscriber):
                await peer.node.mount(peer.relay)
                await stack.enter_async_context(peer.node.run())
                await peer.node.host.dial(node.addr)
            for peer in (member, outsider, subscriber):
                await peer.relay.driver.wait_until(lambda router: len(router.mesh[PROTECTED]) == 1)

            async def node_meshed() -> bool:
                return await node.mesh_peers(shard=SHARD) == 3

            await wait_until(node_meshed, 30, what="the node to mesh with all three on shard 7")

            now = now_ns()
            for i in range(3):
                outsider.relay.publish(PROTECTED, message(f"unsigned {i}"))
            for bad in (
                impostor.sign(PROTECTED, message("forged")),
                owner.sign(PROTECTED, message("replayed", now - 10 * MINUTE_NS)),
            ):
                outsider.relay.driver.publish(PROTECTED, bad.encode())
            expected = {"signature_length": 3, "signature_mismatch": 1}
            expected["signed_timestamp_out_of_window"] = 1

            def series(reason: str) -> str:
                return f'{REJECTIONS}{{topic="{PROTECTED}",reason="{reason}"}}'

            async def all_rejected() -> bool:
                samples = await scrape(node.metrics_url)
                return all(samples.get(series(r)) == n for r, n in expected.items())

            await wait_until(all_rejected, 30, what="the node to reject all five")
            signed = [b"signed 0", b"signed 1"]
            for payload in signed:
                assert member.relay.publish(PROTECTED, message(payload.decode())) == 1
            await subscriber.heard(len(signed))

            async def archived() -> bool:  # the store keeps only what relay accepted
                return (await scrape(node.metrics_url))["chinwag_archive_messages"] == 2

            await wait_until(archived, 30, what="the node to archive the two signed messages")
            samples = await scrape(node.metrics_url)

    assert subscriber.payloads == signed
    assert outsider.payloads[-2:] == signed  # it hears the shard; it just cannot post there
    assert samples[f'chinwag_relay_protected_shard_key{{topic="{PROTECTED}",'
                   f'key="{owner.public_key.to_hex()}"}}'] == 1  # fmt: skip
    assert samples['chinwag_relay_validation_total{outcome="accept",reason=""}'] == 2
    assert sum(v for k, v in samples.items() if k.startswith(REJECTIONS)) == 5
