"""Message path latency with telemetry on and its collector blackholed, against telemetry off.

Three nodes on loopback in one process, as tests/bench/messenger.py: a service node (relay +
store) and two messengers with real SQLCipher profiles. Alice sends N messages to Bob,
paced; each is timed from `send_text` returning to Bob's `MessageAdded` event. In the
`blackholed` mode both messengers run the real telemetry client at level `reliability`
(recorder, hook, writer into the profile every second, uploader every `--upload-period`
seconds) pointed at a collector behind a black hole (connections accepted, never answered:
tests/harness/blackhole.py), so every upload hangs until its timeout while the chat goes on;
in the `off` mode there is no telemetry at all. Modes alternate over `--rounds` rounds, each
on fresh profiles and nodes, so a drift of the machine's load hits both.

Prints one JSON object per mode and round, then one summary per mode. Never asserts on time.

    python tests/bench/telemetry_latency.py [--messages N] [--rate R] [--rounds K] [--quick]
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
from harness.blackhole import Blackhole  # noqa: E402
from harness.waiting import wait_until  # noqa: E402
from multiaddr import Multiaddr  # noqa: E402

from chat.events import MessageAdded  # noqa: E402
from chat.messenger import Messenger, MessengerConfig  # noqa: E402
from chat.telemetry import outbox  # noqa: E402
from chat.telemetry.client.attach import AttachedTelemetry  # noqa: E402
from chat.telemetry.client.service import ClientOptions  # noqa: E402
from chat.telemetry.settings import TelemetrySettings  # noqa: E402
from chat.waku.node import NodeConfig  # noqa: E402
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions  # noqa: E402
from storage.aio import AsyncStore  # noqa: E402
from storage.kdf import KdfParams  # noqa: E402
from storage.profiles import Profiles  # noqa: E402

LOOPBACK = "/ip4/127.0.0.1/tcp/0"
PASSPHRASE = "benchmark passphrase"
TEXT = "the quick brown fox jumps over the lazy dog, again and again"
MODES = ("off", "blackholed")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def befriend(alice: Messenger, bob: Messenger) -> str:
    async def meshed() -> bool:
        return bool(sum(alice.node.relay_peers().values()) and sum(bob.node.relay_peers().values()))

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
    return chat_id


async def one_run(
    mode: str, messages: int, rate: float, upload_period: float, base: Path
) -> dict[str, Any]:
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
    dbs = [AsyncStore(store) for store in stores]
    latencies: list[float] = []
    queued: list[int] = []
    hole = Blackhole(1)  # its target is never reached: it stays a black hole
    async with service.run(), trio.open_nursery() as nursery:
        await nursery.start(hole.run)
        config = MessengerConfig(
            listen_addrs=(LOOPBACK,), peers=(str(service.node.full_multiaddrs()[0]),)
        )
        alice, bob = (Messenger(s, config, db=db) for s, db in zip(stores, dbs, strict=True))
        async with alice.run(), bob.run(), trio.open_nursery() as telemetry:
            attached: list[AttachedTelemetry] = []
            if mode == "blackholed":
                settings = TelemetrySettings(level="reliability", collector=hole.url)
                for messenger, db in ((alice, dbs[0]), (bob, dbs[1])):
                    options = ClientOptions(upload_period=upload_period)
                    reporting = AttachedTelemetry(
                        settings, messenger, db, options, heartbeat_period=upload_period
                    )
                    await telemetry.start(reporting.run)
                    attached.append(reporting)
            chat_id = await befriend(alice, bob)
            events = bob.subscribe(messages * 4 + 100)
            sent_at: dict[str, float] = {}
            shown_at: dict[str, float] = {}

            async def watch() -> None:
                async for event in events:
                    if isinstance(event, MessageAdded) and not event.message.outgoing:
                        shown_at[event.message.id] = time.perf_counter()

            async with trio.open_nursery() as watching:
                watching.start_soon(watch)
                for i in range(messages):
                    view = await alice.send_text(chat_id, f"{TEXT} {i:05d}")
                    sent_at[view.id] = time.perf_counter()
                    await trio.sleep(1 / rate)

                async def all_shown() -> bool:
                    return len(shown_at) >= messages

                await wait_until(all_shown, 120)
                watching.cancel_scope.cancel()
            latencies = [(shown_at[m] - sent_at[m]) * 1000 for m in sent_at if m in shown_at]
            for reporting in attached:
                await reporting.client.flush()
            for db in dbs[: len(attached)]:
                queued.append((await db.run(outbox.status)).queued)
            telemetry.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    for store in stores:
        store.close()
    return {
        "bench": "telemetry_message_latency",
        "mode": mode,
        "messages": messages,
        "rate_per_s": rate,
        "displayed": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p90_ms": round(percentile(latencies, 0.90), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "uploads_swallowed": hole.swallowed,
        "events_queued": queued,
        "_latencies": latencies,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--upload-period", type=float, default=2.0, help="seconds")
    parser.add_argument("--quick", action="store_true", help="20 messages, 1 round: CI's run")
    args = parser.parse_args(argv)
    messages, rounds = (20, 1) if args.quick else (args.messages, args.rounds)
    every: dict[str, list[float]] = {mode: [] for mode in MODES}
    for round_number in range(rounds):
        for mode in MODES:
            with tempfile.TemporaryDirectory() as tmp:
                row = trio.run(one_run, mode, messages, args.rate, args.upload_period, Path(tmp))
            every[mode] += row.pop("_latencies")
            print(json.dumps({**row, "round": round_number}), flush=True)
    for mode, latencies in every.items():
        summary = {
            "bench": "telemetry_message_latency_summary",
            "mode": mode,
            "rounds": rounds,
            "displayed": len(latencies),
            "p50_ms": round(statistics.median(latencies), 2),
            "p90_ms": round(percentile(latencies, 0.90), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
        }
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
