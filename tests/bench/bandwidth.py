"""Bandwidth meter benchmark: what counting costs, and where a chat's bytes go.

    python tests/bench/bandwidth.py [--messages N] [--calls C] [--runs R] [--quick]

1. Cost (CPU µs per call, `time.process_time`, median over `runs`): the meter's `count` (what
   every stream read and write adds), the stream proxy's read and write around an in-memory
   stream against the bare stream, relay frames split by kind (a new publish frame, the same
   frame again for the next mesh peer, an inbound 1 KB publish frame, an inbound control
   frame), and beside them the relay router's own `handle_rpc` for the same inbound frame.
2. Share: a service node (relay + store) and two messengers with real SQCipher profiles on
   loopback; Alice sends N messages (paced) that Bob acknowledges; then each node's bytes per
   protocol and relay kind, and the share of each in its wire total.

Prints JSON lines; `--quick` is what CI runs. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(REPO))  # this folder's storage.py must not hide the storage package
sys.path.append(str(REPO / "tests"))

import trio  # noqa: E402
from harness.waiting import wait_until  # noqa: E402
from multiaddr import Multiaddr  # noqa: E402

from chat.messenger import Messenger, MessengerConfig  # noqa: E402
from chat.waku.bandwidth import IN, BandwidthMeter, Snapshot, protocol_slot  # noqa: E402
from chat.waku.bandwidth_taps import CountingStream  # noqa: E402
from chat.waku.message import WakuMessage, now_ns  # noqa: E402
from chat.waku.node import NodeConfig  # noqa: E402
from chat.waku.proto import rpc_pb2  # noqa: E402
from chat.waku.relay.core import Router  # noqa: E402
from chat.waku.relay.traffic import RelayTraffic  # noqa: E402
from chat.waku.relay.wire import ControlBatch, encode_publish_frame  # noqa: E402
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions  # noqa: E402
from storage.kdf import KdfParams  # noqa: E402
from storage.profiles import Profiles  # noqa: E402

LOOPBACK = "/ip4/127.0.0.1/tcp/0"
PASSPHRASE = "benchmark passphrase"
PUBSUB = "/waku/2/rs/42/0"
CHAT = "/chinwag/1/dm-bench/proto"
TEXT = "the quick brown fox jumps over the lazy dog, again and again"  # 60 bytes


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "bandwidth", **fields}), flush=True)


def cpu_us(work: Callable[[int], None], calls: int, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.process_time()
        work(calls)
        samples.append((time.process_time() - start) / calls * 1e6)
    return round(statistics.median(samples), 3)


class MemoryStream:
    """The least a stream can do: hand out the same chunk, swallow writes."""

    protocol_id = "/vac/waku/relay/2.0.0"

    def __init__(self, chunk: bytes) -> None:
        self.chunk = chunk

    async def read(self, n: int | None = None) -> bytes:
        return self.chunk

    async def write(self, data: bytes) -> None:
        return None


def stream_costs(calls: int, runs: int) -> dict[str, float]:
    chunk = bytes(1024)
    bare = MemoryStream(chunk)
    counted = CountingStream(MemoryStream(chunk), bare, BandwidthMeter(0.0))

    def reads(stream: Any) -> Callable[[int], None]:
        async def loop(n: int) -> None:
            for _ in range(n):
                await stream.read(65536)
                await stream.write(chunk)

        return lambda n: trio.run(loop, n)

    bare_us = cpu_us(reads(bare), calls, runs)
    counted_us = cpu_us(reads(counted), calls, runs)
    return {
        "stream_read_write_bare_us": bare_us,
        "stream_read_write_counted_us": counted_us,
        "stream_proxy_overhead_us": round(counted_us - bare_us, 3),
    }


def relay_costs(calls: int, runs: int) -> dict[str, float]:
    meter = BandwidthMeter(0.0)
    meter.kinds.set_topic(CHAT, "chat")
    traffic = RelayTraffic(meter)
    data = WakuMessage(bytes(1000), CHAT, timestamp=now_ns()).encode()
    frames = [
        encode_publish_frame(PUBSUB.encode(), data[:-4] + i.to_bytes(4, "big"))
        for i in range(calls)
    ]
    inbound = [frame[2:] for frame in frames]  # a 1 KB frame's prefix is 2 bytes
    batch = ControlBatch()
    batch.ihave.append((PUBSUB, [bytes(32)] * 10))
    batch.grafts.append(PUBSUB)
    [control] = batch.encode(1 << 20, 5000)
    control_in = control[1:]
    slot = protocol_slot("/vac/waku/relay/2.0.0", IN)

    def count(n: int) -> None:
        for _ in range(n):
            meter.count(slot, 1024)

    def sent_new(n: int) -> None:
        for frame in frames[:n]:
            traffic.sent(frame)

    def sent_same(n: int) -> None:
        frame = frames[0]
        for _ in range(n):
            traffic.sent(frame)

    def received_publish(n: int) -> None:
        for frame in inbound[:n]:
            traffic.received(frame)

    def received_control(n: int) -> None:
        for _ in range(n):
            traffic.received(control_in)

    def router_publish(n: int) -> None:
        router = Router()
        router.add_peer("peer", 0.0, outbound=True)
        router.subscribe(PUBSUB, 0.0)
        rpc = rpc_pb2.RPC()
        rpc.subscriptions.add(subscribe=True, topicid=PUBSUB)
        router.handle_rpc("peer", rpc.SerializeToString(), 0.0)
        for frame in inbound[:n]:
            router.handle_rpc("peer", frame, 0.0)
            router.take_actions()

    return {
        "count_us": cpu_us(count, calls, runs),
        "relay_sent_new_frame_us": cpu_us(sent_new, calls, runs),
        "relay_sent_same_frame_us": cpu_us(sent_same, calls, runs),
        "relay_received_publish_1k_us": cpu_us(received_publish, calls, runs),
        "relay_received_control_us": cpu_us(received_control, calls, runs),
        "router_handle_rpc_publish_1k_us": cpu_us(router_publish, calls, runs),
    }


def shares(node: str, snapshot: Snapshot) -> list[dict[str, Any]]:
    wire = snapshot.wire.bytes_in + snapshot.wire.bytes_out
    rows = []
    for group, lines in (
        ("protocol", (*snapshot.protocols, snapshot.transport)),
        ("relay_kind", snapshot.kinds),
    ):
        for line in lines:
            total = line.bytes_in + line.bytes_out
            if total:
                rows.append(
                    {
                        "metric": "share",
                        "node": node,
                        group: line.name,
                        "bytes_in": line.bytes_in,
                        "bytes_out": line.bytes_out,
                        "messages_in": line.messages_in,
                        "messages_out": line.messages_out,
                        "share_of_wire_pct": round(100 * total / wire, 2) if wire else None,
                    }
                )
    return rows


async def chat_run(messages: int, rate: float, base: Path) -> list[dict[str, Any]]:
    service = ServiceNode(
        ServiceNodeConfig(
            node=NodeConfig(listen_addrs=[Multiaddr(LOOPBACK)]),
            store=StoreOptions(base / "archive.sqlite"),
        )
    )
    profiles = Profiles(base / "profiles")
    kdf = KdfParams.fresh(opslimit=1, memlimit=8192)
    stores = [
        profiles.create(n, PASSPHRASE, display_name=n, now=1, kdf=kdf) for n in ("alice", "bob")
    ]
    rows: list[dict[str, Any]] = []
    async with service.run():
        config = MessengerConfig(
            listen_addrs=(LOOPBACK,), peers=(str(service.node.full_multiaddrs()[0]),)
        )
        alice, bob = Messenger(stores[0], config), Messenger(stores[1], config)
        async with alice.run(), bob.run():

            async def meshed() -> bool:
                return bool(
                    sum(alice.node.relay_peers().values()) and sum(bob.node.relay_peers().values())
                )

            await wait_until(meshed)
            await alice.add_contact(bob.identity().contact_link, "bench")
            alice_key = alice.identity().chat_key

            async def asked() -> bool:
                return any(c.chat_key == alice_key for c in await bob.contacts())

            await wait_until(asked)
            chat_id = (await bob.accept_contact(alice_key)).chat_id
            assert chat_id is not None

            async def mutual() -> bool:
                return any(c.state == "mutual" for c in await alice.contacts())

            await wait_until(mutual)
            started = time.perf_counter()
            for i in range(messages):
                await alice.send_text(chat_id, f"{TEXT} {i:05d}")
                await trio.sleep(1 / rate)

            async def delivered() -> bool:
                views = await alice.messages(chat_id, limit=messages)
                return sum(v.state == "delivered" for v in views) == messages

            await wait_until(delivered, 120)
            rows.append(
                {
                    "metric": "chat_run",
                    "messages": messages,
                    "text_bytes": len(TEXT) + 6,
                    "seconds": round(time.perf_counter() - started, 2),
                }
            )
            rows += shares("alice", await alice.bandwidth())
            rows += shares("bob", await bob.bandwidth())
            rows += shares("service", service.node.host.bandwidth.snapshot(trio.current_time()))
    for store in stores:
        store.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="CI's smoke run")
    args = parser.parse_args(argv)
    messages, calls, runs = (20, 500, 2) if args.quick else (args.messages, args.calls, args.runs)
    emit(metric="cost", calls=calls, runs=runs, **relay_costs(calls, runs))
    emit(metric="cost", calls=calls, runs=runs, **stream_costs(calls, runs))
    with tempfile.TemporaryDirectory() as tmp:
        for row in trio.run(chat_run, messages, args.rate, Path(tmp)):
            emit(**row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
