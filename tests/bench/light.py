"""Light mode benchmark: what an idle light client receives, how fast messages show, and how
long losing the filter node takes to recover from.

    python tests/bench/light.py [--messages N] [--traffic-seconds T] [--rate R] [--quick]

Three service nodes (relay, store, filter, light push) on loopback; Rob and Rita are relay
clients, Lena a light client (two of the service nodes hold her subscriptions), all with
real SQLCipher profiles.

1. `idle_bytes`: other people's traffic (R msg/s of 200-byte messages on topics nobody here
   reads, published by a service node on shard 0) for T seconds; the bytes Lena (light) and
   Rita (relay, idle too) received meanwhile, and per hour.
2. `latency`: send -> displayed (the receiver's `message_added` event), p50/p99 over N
   messages per path: relay -> light (Rob to Lena), light -> relay (Lena to Rob), relay ->
   relay (Rob to Rita).
3. `recovery`: the service node first in Lena's filter pool is stopped; seconds until her
   subscriptions are held on two nodes again, and until a message Rob sent right after the
   loss is shown to her.

Prints JSON lines; `--quick` is what CI runs. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(REPO))  # this folder's storage.py must not hide the storage package
sys.path.append(str(REPO / "tests"))

import trio  # noqa: E402
import trio.lowlevel  # noqa: E402
from harness.light_network import LightNet, light_node, light_ready  # noqa: E402
from harness.live_groups import befriend  # noqa: E402
from harness.waiting import wait_until  # noqa: E402

from chat import events as ev  # noqa: E402
from chat.messenger import Messenger  # noqa: E402
from chat.waku.message import WakuMessage, now_ns  # noqa: E402
from storage.profiles import Profiles  # noqa: E402


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "light", **fields}), flush=True)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def wire_in(messenger: Messenger) -> int:
    return int(messenger.node.bandwidth.snapshot(trio.current_time()).wire.bytes_in)


async def chat_between(newcomer: Messenger, other: Messenger) -> str:
    """Their 1:1 chat's id (the same on both sides); `newcomer` has no other chat yet."""
    await befriend(newcomer, other)
    return next(c.id for c in await newcomer.chats() if c.kind == "direct")


async def displayed_at(receiver: Messenger, texts: set[str], shown: dict[str, float]) -> None:
    with receiver.subscribe() as events:
        async for event in events:
            message = event.message if isinstance(event, ev.MessageAdded) else None
            if message is not None and not message.outgoing and message.text in texts:
                shown[message.text] = trio.current_time()
                if len(shown) == len(texts):
                    return


async def latency(
    sender: Messenger, receiver: Messenger, chat_id: str, path: str, count: int, rate: float
) -> dict[str, Any]:
    texts = [f"{path} {i}" for i in range(count)]
    sent: dict[str, float] = {}
    shown: dict[str, float] = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(displayed_at, receiver, set(texts), shown)
        await trio.lowlevel.checkpoint()
        for text in texts:
            sent[text] = trio.current_time()
            await sender.send_text(chat_id, text)
            await trio.sleep(1 / rate)
        with trio.move_on_after(60):
            await wait_until(lambda: len(shown) == count, 60)
        nursery.cancel_scope.cancel()
    samples = [(shown[t] - sent[t]) * 1000 for t in texts if t in shown]
    return {
        "metric": "latency",
        "path": path,
        "messages": count,
        "shown": len(samples),
        "p50_ms": round(statistics.median(samples), 1) if samples else None,
        "p99_ms": round(percentile(samples, 99), 1) if samples else None,
    }


async def other_traffic(net: LightNet, topic: str, seconds: float, rate: float) -> int:
    service = next(iter(net.services.values()))
    published = 0
    end = trio.current_time() + seconds
    while trio.current_time() < end:
        message = WakuMessage(
            payload=bytes(200), content_topic=f"/other/1/room-{published % 20}/proto",
            timestamp=now_ns(),
        )  # fmt: skip
        try:
            service.relay.publish(topic, message)
            published += 1
        except Exception:  # no peer yet: the bench measures what gets through
            pass
        await trio.sleep(1 / rate)
    return published


async def run(
    messages: int, traffic_seconds: float, rate: float, base: Path
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async with trio.open_nursery() as nursery:
        net = LightNet(nursery, base, Profiles(base / "profiles"))
        try:
            await net.start_services(3)
            lena = await net.start("lena", light=True)
            rob = await net.start("rob", light=False)
            rita = await net.start("rita", light=False)
            lena_rob = await chat_between(lena, rob)
            rob_rita = await chat_between(rita, rob)
            await wait_until(lambda: light_ready(lena), 30)

            # 1. idle bytes under other people's traffic
            before = {"light": wire_in(lena), "relay": wire_in(rita)}
            started = trio.current_time()
            topic = light_node(lena).pubsub_topics[0]
            published = await other_traffic(net, topic, traffic_seconds, rate)
            await trio.sleep(0.5)  # what is in flight lands
            elapsed = trio.current_time() - started
            for mode, messenger in (("light", lena), ("relay", rita)):
                got = wire_in(messenger) - before[mode]
                rows.append(
                    {
                        "metric": "idle_bytes",
                        "mode": mode,
                        "other_messages": published,
                        "rate_per_s": rate,
                        "seconds": round(elapsed, 1),
                        "bytes_in": got,
                        "bytes_per_hour": round(got / elapsed * 3600),
                    }
                )

            # 2. send -> displayed
            rows.append(await latency(rob, lena, lena_rob, "relay->light", messages, 5.0))
            rows.append(await latency(lena, rob, lena_rob, "light->relay", messages, 5.0))
            rows.append(await latency(rob, rita, rob_rita, "relay->relay", messages, 5.0))

            # 3. recovery from the loss of the filter node
            light = light_node(lena)
            lost = light.filter.core.active_peers[0]
            shown: dict[str, float] = {}
            async with trio.open_nursery() as watch:
                watch.start_soon(displayed_at, lena, {"after the loss"}, shown)
                await trio.lowlevel.checkpoint()
                stopped_at = trio.current_time()
                await net.stop(net.service_named(lost))
                await rob.send_text(lena_rob, "after the loss")

                async def moved() -> bool:
                    return lost not in light.filter.core.active_peers and await light_ready(lena)

                await wait_until(moved, 60)
                held_at = trio.current_time()
                await wait_until(lambda: bool(shown), 60)
            rows.append(
                {
                    "metric": "recovery",
                    "filter_held_again_s": round(held_at - stopped_at, 3),
                    "message_after_loss_shown_s": round(shown["after the loss"] - stopped_at, 3),
                    "failovers": light.core.failovers,
                }
            )
        finally:
            net.close()
            nursery.cancel_scope.cancel()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--traffic-seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=10.0, help="other people's msg/s")
    parser.add_argument("--quick", action="store_true", help="CI's smoke run")
    args = parser.parse_args(argv)
    messages, seconds = (10, 3.0) if args.quick else (args.messages, args.traffic_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        for row in trio.run(run, messages, seconds, args.rate, Path(tmp)):
            emit(**row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
