"""Bench node: chinwag's own stack, as `chinwag node` runs it.

A `Node` (WakuHost: Noise, yamux/mplex, metadata) with a `RelayService` mounted: our sans-IO
gossipsub router and its trio driver on /vac/waku/relay/2.0.0, the real `RelayValidator`
(size, decode, timestamp), StrictNoSign, message id SHA-256(data). Messages are published
through `RelayService.publish`, the path the app uses, and received through a relay sink.

`drops` is every message our stack counted as dropped: frames refused by a full per-peer send
queue, messages refused by a full delivery channel, and publishes that found no relay peer.

A burst (rate 0) publishes as fast as the network takes it: before each message the publisher
waits, boundedly, while a send queue is over half full (`RelayService.wait_for_room`), the
flow control an app publishing many messages uses. A paced run never waits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio
import trio.lowlevel
from multiaddr import Multiaddr

sys.path.insert(0, str(Path(__file__).parent))
from lineproto import (
    CONTENT_TOPIC,
    Receiver,
    answer,
    commands,
    cpu_seconds,
    make_payload,
    peak_rss_mb,
)

from chat.waku.message import WakuMessage, now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.relay.core import NoPeersReached
from chat.waku.relay.service import RelayService
from chat.waku.validation import RelayValidator

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")


async def main() -> None:
    node = Node(NodeConfig(listen_addrs=[LOOPBACK], shards=(0,)))
    relay = RelayService([], validator=RelayValidator(clock=now_ns))
    receiver = Receiver()
    unreached = 0

    def sink(topic: str, message: WakuMessage, data: bytes) -> None:
        receiver.record(message.payload)

    relay.add_sink(sink)
    await node.mount(relay)
    async with node.run():
        counters = relay.driver.counters
        base = counters.as_dict()
        base_unreached = 0
        answer(event="ready", addrs=[str(a) for a in node.full_multiaddrs()])
        async for cmd in commands():
            op = cmd["op"]
            if op == "connect":
                await node.host.dial(cmd["addr"])
                answer(ok=True)
            elif op == "subscribe":
                relay.subscribe(cmd["topic"])
                answer(ok=True)
            elif op == "wait_mesh":
                topic, want = cmd["topic"], cmd["min"]
                with trio.move_on_after(cmd.get("timeout", 20)):
                    await relay.driver.wait_until(
                        lambda r, topic=topic, want=want: len(r.mesh.get(topic, ())) >= want
                    )
                answer(ok=True, mesh=len(relay.router.mesh.get(topic, ())))
            elif op == "publish":
                interval = 1 / cmd["rate"] if cmd["rate"] else 0
                start = trio.current_time()
                reached = waits_given_up = 0
                for seq in range(cmd["count"]):
                    if interval:
                        await trio.sleep_until(start + seq * interval)
                    else:
                        # As fast as the network takes them: wait while our send queue to a
                        # peer is over half full (bounded; past that, drops are counted).
                        waits_given_up += not await relay.wait_for_room(cmd["topic"])
                    message = WakuMessage(
                        make_payload(cmd.get("seq_base", 0) + seq, cmd["size"]),
                        CONTENT_TOPIC,
                        timestamp=now_ns(),
                    )
                    queue_drops = counters.send_queue_drops
                    try:
                        reached += relay.publish(cmd["topic"], message)
                    except NoPeersReached:
                        # Full send queues are counted by the driver already; count the rest.
                        if counters.send_queue_drops == queue_drops:
                            unreached += 1
                    if not interval:
                        await trio.lowlevel.checkpoint()  # let the writers drain
                answer(ok=True, sent=cmd["count"], reached=reached, waits_given_up=waits_given_up)
            elif op == "stats":
                now = counters.as_dict()
                drops = (
                    now["send_queue_drops"]
                    - base["send_queue_drops"]
                    + now["delivery_drops"]
                    - base["delivery_drops"]
                    + unreached
                    - base_unreached
                )
                answer(
                    **receiver.stats(),
                    cpu_s=cpu_seconds(),
                    rss_mb=peak_rss_mb(),
                    drops=drops,
                    relayed=now["forwarded"] - base["forwarded"],
                    counters={k: v - base[k] for k, v in now.items() if v != base[k]},
                )
            elif op == "reset":
                receiver = Receiver()
                base, base_unreached = counters.as_dict(), unreached
                answer(ok=True)
            elif op == "quit":
                answer(ok=True)
                break


if __name__ == "__main__":
    trio.run(main)
