"""Bench node: py-libp2p 0.8.1's own GossipSub, configured as close to Waku relay as its
public API allows.

What the public API cannot do (see docs/performance.md): speak /vac/waku/relay/2.0.0 (peers
on it are silently ignored, so this uses /meshsub/1.1.0), publish StrictNoSign (publish()
always adds from and seqno), or size its 32-slot queues. Message id is SHA-256(data), the
heartbeat 1 s, and the non-standard spam/adaptive-gossip/eclipse defaults are off.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import trio
from libp2p import new_host
from libp2p.crypto.secp256k1 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service.context import background_trio_service
from multiaddr import Multiaddr

sys.path.insert(0, str(Path(__file__).parent))
import trio.lowlevel
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


def message_id(msg: Any) -> bytes:
    return hashlib.sha256(msg.data).digest()


async def main() -> None:
    key_pair = create_new_key_pair()
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE_ID: NoiseTransport(key_pair, noise_privkey=create_x25519().private_key)},
        muxer_opt={YAMUX_ID: Yamux},
    )
    router = GossipSub(
        protocols=["/meshsub/1.1.0"],
        degree=6,
        degree_low=4,
        degree_high=8,
        heartbeat_interval=1,
        time_to_live=60,
        prune_back_off=60,
        unsubscribe_back_off=5,
        spam_protection_enabled=False,
        adaptive_gossip_enabled=False,
        eclipse_protection_enabled=False,
    )
    pubsub = Pubsub(host, router, strict_signing=False, msg_id_constructor=message_id)
    receiver = Receiver()
    async with (
        host.run([Multiaddr("/ip4/127.0.0.1/tcp/0")]),
        background_trio_service(pubsub),
        background_trio_service(router),
        trio.open_nursery() as nursery,
    ):
        await pubsub.wait_until_ready()
        peer = host.get_id().to_string()
        addrs = [str(a) if "/p2p/" in str(a) else f"{a}/p2p/{peer}" for a in host.get_addrs()]
        answer(event="ready", addrs=addrs)

        async def drain(sub: Any) -> None:
            while True:
                msg = await sub.get()
                try:
                    receiver.record(WakuMessage.decode(msg.data).payload)
                except ValueError:
                    pass

        async for cmd in commands():
            op = cmd["op"]
            if op == "connect":
                await host.connect(info_from_p2p_addr(Multiaddr(cmd["addr"])))
                answer(ok=True)
            elif op == "subscribe":
                sub = await pubsub.subscribe(cmd["topic"])
                nursery.start_soon(drain, sub)
                answer(ok=True)
            elif op == "wait_mesh":
                with trio.move_on_after(cmd.get("timeout", 20)):
                    # py-libp2p exposes no mesh event, so poll.
                    while len(router.mesh.get(cmd["topic"], ())) < cmd["min"]:  # noqa: ASYNC110
                        await trio.sleep(0.05)
                answer(ok=True, mesh=len(router.mesh.get(cmd["topic"], ())))
            elif op == "publish":
                interval = 1 / cmd["rate"] if cmd["rate"] else 0
                start = trio.current_time()
                for seq in range(cmd["count"]):
                    if interval:
                        await trio.sleep_until(start + seq * interval)
                    data = WakuMessage(
                        make_payload(cmd.get("seq_base", 0) + seq, cmd["size"]),
                        CONTENT_TOPIC,
                        timestamp=now_ns(),
                    ).encode()
                    await pubsub.publish(cmd["topic"], data)
                    if not interval:
                        await trio.lowlevel.checkpoint()  # let the router drain between publishes
                answer(ok=True, sent=cmd["count"], reached=None)
            elif op == "stats":
                answer(
                    **receiver.stats(),
                    cpu_s=cpu_seconds(),
                    rss_mb=peak_rss_mb(),
                    drops=None,  # py-libp2p drops silently (DEBUG log only)
                    relayed=None,
                )
            elif op == "reset":
                receiver = Receiver()
                answer(ok=True)
            elif op == "quit":
                answer(ok=True)
                nursery.cancel_scope.cancel()
                break


if __name__ == "__main__":
    trio.run(main)
