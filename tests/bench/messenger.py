"""Messenger benchmark: send → displayed latency and bytes on the wire per message.

Three nodes on loopback in one process: a service node (relay + store) and two messengers
with real SQLCipher profiles. Alice sends N messages to Bob, paced; for each we time from
`send_text` returning to Bob's `MessageAdded` event (the moment a face would draw it), and
record the size of what went on the wire (the encoded WakuMessage) against the plaintext.
The SDS overhead of one frame is reported beside the same figure for @waku/sds's defaults
(history 200, 10,000-id bloom), measured here with our byte-identical implementation.

Prints JSON lines; `--quick` is what CI runs. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(REPO))  # this folder's storage.py must not hide the storage package
sys.path.append(str(REPO / "tests"))

import trio  # noqa: E402
from harness.waiting import wait_until  # noqa: E402
from multiaddr import Multiaddr  # noqa: E402

from chat.events import MessageAdded  # noqa: E402
from chat.messenger import Messenger, MessengerConfig  # noqa: E402
from chat.reliability.sds import JS_DEFAULTS, SdsChannel, SdsParams  # noqa: E402
from chat.waku.message import WakuMessage  # noqa: E402
from chat.waku.node import NodeConfig  # noqa: E402
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions  # noqa: E402
from storage.kdf import KdfParams  # noqa: E402
from storage.profiles import Profiles  # noqa: E402

LOOPBACK = "/ip4/127.0.0.1/tcp/0"
PASSPHRASE = "benchmark passphrase"
TEXT = "the quick brown fox jumps over the lazy dog, again and again"  # 60 bytes


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sds_overhead(params: SdsParams, history_messages: int) -> int:
    """Bytes an SDS frame adds to TEXT after `history_messages` exchanged messages."""
    alice, bob = SdsChannel("chat", "alice", params), SdsChannel("chat", "bob", params)
    for i in range(history_messages):
        frame = bob.wrap(f"m{i}".encode(), f"{i:064x}", 1000 + i)
        bob.mark_sent(frame.message_id, bytes(32))
        alice.receive(frame, 2000 + i, bytes(32))
    frame = alice.wrap(TEXT.encode(), "f" * 64, 10_000)
    return len(frame.encode()) - len(TEXT.encode())


async def run(messages: int, rate: float, base: Path) -> list[dict[str, Any]]:
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
    wire_sizes: list[int] = []
    latencies: list[float] = []
    async with service.run():
        config = MessengerConfig(
            listen_addrs=(LOOPBACK,), peers=(str(service.node.full_multiaddrs()[0]),)
        )
        alice, bob = Messenger(stores[0], config), Messenger(stores[1], config)
        original_publish = alice.node.publish

        def measuring_publish(pubsub_topic: str, message: WakuMessage) -> int:
            wire_sizes.append(len(message.encode()))
            return original_publish(pubsub_topic, message)

        alice.node.publish = measuring_publish  # type: ignore[method-assign]
        async with alice.run(), bob.run():

            async def meshed() -> bool:
                return bool(
                    sum(alice.node.relay_peers().values()) and sum(bob.node.relay_peers().values())
                )

            await wait_until(meshed)
            events = bob.subscribe(messages * 4 + 100)
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
            wire_sizes.clear()
            sent_at: dict[str, float] = {}
            shown_at: dict[str, float] = {}

            async def watch() -> None:
                async for event in events:
                    if isinstance(event, MessageAdded) and not event.message.outgoing:
                        shown_at[event.message.id] = time.perf_counter()
                        if len(shown_at) == messages:
                            return

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                for i in range(messages):
                    view = await alice.send_text(chat_id, f"{TEXT} {i:05d}")
                    sent_at[view.id] = time.perf_counter()
                    await trio.sleep(1 / rate)

                async def all_shown() -> bool:
                    return len(shown_at) == messages

                await wait_until(all_shown, 120)
                nursery.cancel_scope.cancel()
            latencies = [(shown_at[m] - sent_at[m]) * 1000 for m in sent_at if m in shown_at]
    for store in stores:
        store.close()
    plaintext = len(TEXT) + 6
    content_sizes = [s for s in wire_sizes if s > 200]  # syncs are smaller than messages
    return [
        {
            "bench": "messenger_send_to_displayed",
            "messages": messages,
            "rate_per_s": rate,
            "displayed": len(latencies),
            "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "max_ms": round(max(latencies), 2),
        },
        {
            "bench": "messenger_bytes_on_wire",
            "plaintext_bytes": plaintext,
            "wire_bytes_median": int(statistics.median(content_sizes)) if content_sizes else None,
            "publishes": len(wire_sizes),
            "publishes_per_message": round(len(wire_sizes) / messages, 2),
            "sds_overhead_bytes_ours": sds_overhead(SdsParams(), 500),
            "sds_overhead_bytes_js_defaults": sds_overhead(JS_DEFAULTS, 500),
        },
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second")
    parser.add_argument("--quick", action="store_true", help="50 messages: CI's smoke run")
    args = parser.parse_args(argv)
    messages = 50 if args.quick else args.messages
    with tempfile.TemporaryDirectory() as tmp:
        for line in trio.run(run, messages, args.rate, Path(tmp)):
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
