"""The relay driver on real py-libp2p hosts over 127.0.0.1 (Noise; yamux and mplex)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as Noise
from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr

from chat.waku.framing import encode_frame, encode_uvarint
from chat.waku.message import WakuMessage
from chat.waku.relay.core import Deliver, Router
from chat.waku.relay.driver import DriverLimits, RelayDriver
from chat.waku.relay.wire import RELAY_PROTOCOL

TOPIC = "/waku/2/rs/42/0"
MUXERS: dict[str, dict[Any, Any]] = {
    "yamux": {YAMUX_ID: Yamux},
    "mplex": {MPLEX_PROTOCOL_ID: Mplex},
}
TIMEOUT = 20


@asynccontextmanager
async def relay_node(
    nursery: trio.Nursery, muxer: str, limits: DriverLimits | None = None
) -> AsyncIterator[RelayDriver]:
    key_pair = create_new_key_pair()
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE_ID: Noise(key_pair, noise_privkey=create_x25519().private_key)},
        muxer_opt=MUXERS[muxer],
    )
    async with host.run([Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        driver = RelayDriver(host, Router(), limits=limits)
        await nursery.start(driver.run)
        yield driver


async def connect(a: RelayDriver, b: RelayDriver) -> None:
    await a.host.connect(PeerInfo(b.host.get_id(), b.host.get_addrs()))


def mesh_of(count: int) -> Callable[[Router], bool]:
    return lambda router: len(router.mesh.get(TOPIC, ())) >= count


def waku(text: str) -> bytes:
    return WakuMessage(
        payload=text.encode(), content_topic="/chinwag/1/test/proto", timestamp=1
    ).encode()


async def receive(channel: trio.MemoryReceiveChannel[Deliver], count: int) -> list[bytes]:
    with trio.fail_after(TIMEOUT):
        return [(await channel.receive()).data for _ in range(count)]


@pytest.mark.parametrize("muxer", ["yamux", "mplex"])
async def test_messages_flow_both_ways(muxer: str) -> None:
    async with trio.open_nursery() as nursery:  # noqa: SIM117 (the nodes need the nursery)
        async with relay_node(nursery, muxer) as a, relay_node(nursery, muxer) as b:
            inbox_a = a.subscribe(TOPIC)
            inbox_b = b.subscribe(TOPIC)
            await connect(a, b)
            with trio.fail_after(TIMEOUT):
                await a.wait_until(mesh_of(1))
                await b.wait_until(mesh_of(1))
            sent_ab = [waku(f"a to b {i}") for i in range(50)]
            for data in sent_ab:
                assert a.publish(TOPIC, data) == 1
            assert sorted(await receive(inbox_b, 50)) == sorted(sent_ab)
            sent_ba = [waku(f"b to a {i}") for i in range(50)]
            for data in sent_ba:
                assert b.publish(TOPIC, data) == 1
            assert sorted(await receive(inbox_a, 50)) == sorted(sent_ba)
            assert a.counters.send_queue_drops == b.counters.send_queue_drops == 0
            nursery.cancel_scope.cancel()


async def test_a_line_forwards_through_the_middle() -> None:
    async with (
        trio.open_nursery() as nursery,
        relay_node(nursery, "yamux") as a,
        relay_node(nursery, "yamux") as b,
        relay_node(nursery, "yamux") as c,
    ):
        inbox_a, inbox_b, inbox_c = (d.subscribe(TOPIC) for d in (a, b, c))
        await connect(a, b)
        await connect(c, b)
        with trio.fail_after(TIMEOUT):
            await b.wait_until(mesh_of(2))
            await a.wait_until(mesh_of(1))
            await c.wait_until(mesh_of(1))
        assert b.host.get_id() in a.relay_peers and c.host.get_id() not in a.relay_peers
        from_a = [waku(f"from a {i}") for i in range(30)]
        for data in from_a:
            a.publish(TOPIC, data)
        assert sorted(await receive(inbox_c, 30)) == sorted(from_a)
        assert sorted(await receive(inbox_b, 30)) == sorted(from_a)
        from_c = [waku(f"from c {i}") for i in range(30)]
        for data in from_c:
            c.publish(TOPIC, data)
        assert sorted(await receive(inbox_a, 30)) == sorted(from_c)
        assert b.counters.forwarded >= 60
        nursery.cancel_scope.cancel()


async def wait_reset(stream: Any) -> None:
    """Reads until the other side resets or closes the stream."""
    with trio.fail_after(TIMEOUT):
        try:
            while await stream.read(1024):
                pass
        except Exception:
            return


async def test_garbage_and_stalling_streams_are_penalised_and_the_node_keeps_relaying() -> None:
    limits = DriverLimits(partial_frame_timeout=0.5)
    async with (
        trio.open_nursery() as nursery,
        relay_node(nursery, "yamux") as bad,
        relay_node(nursery, "yamux", limits) as b,
        relay_node(nursery, "yamux") as c,
    ):
        inbox_c = c.subscribe(TOPIC)
        b.subscribe(TOPIC)
        await connect(bad, b)
        await connect(c, b)
        with trio.fail_after(TIMEOUT):
            await b.wait_until(lambda r: len(r.peers) == 2)
        bad_id = bad.host.get_id()
        # 1. Well-framed garbage: counted, penalised, the stream survives.
        raw = await bad.host.new_stream(b.host.get_id(), [RELAY_PROTOCOL])
        await raw.write(encode_frame(b"\xff\xff\xff\xff") * 3)
        # 2. A length prefix over the frame limit: the stream is reset.
        await raw.write(encode_uvarint(10_000_000))
        await wait_reset(raw)
        assert b.counters.rpcs_malformed >= 4
        assert b.router.peer_score(bad_id, trio.current_time()) < 0
        # 3. A stream that stalls mid-frame is reset after the partial-frame timeout.
        stalled = await bad.host.new_stream(b.host.get_id(), [RELAY_PROTOCOL])
        await stalled.write(encode_uvarint(1000) + b"x" * 10)
        await wait_reset(stalled)
        assert b.counters.stream_errors >= 1
        # 4. A stream that never writes costs nothing; b keeps relaying to c.
        await bad.host.new_stream(b.host.get_id(), [RELAY_PROTOCOL])
        with trio.fail_after(TIMEOUT):
            await b.wait_until(mesh_of(1))
            await c.wait_until(mesh_of(1))
        data = waku("still alive")
        assert b.publish(TOPIC, data) >= 1
        assert await receive(inbox_c, 1) == [data]
        nursery.cancel_scope.cancel()
