"""Attack benchmark section `held_open_connections` (run by tests/bench/attack.py): a real
`chinwag node` process whose open-connection limit an attacker fills with connections that
finish their handshakes, from a few addresses, while a legitimate peer dials.

The attacker is a separate process: from each of `--open-sources` loopback addresses
(127.0.0.2, 127.0.0.3, ...) it holds `--open-per-source` connections, each its own peer id
(a chinwag `Node`, which answers metadata as any peer must to be kept), and dials again
whenever the node closes one. With the node's defaults (300 connections in all, 64 per
address) 5 addresses fill it. Reported: a legitimate fresh peer's dials from 127.0.0.1 with
nothing held (baseline) and under attack — how long each took and whether the peer was
still connected 1 s later (a node at py-libp2p's own limits finished the handshake and then
closed the connection) — whether one such peer is still connected 5 s later, what the
attacker held and how often the node closed its connections, and
the node's inbound counters from /metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[2]
for extra in (REPO, REPO / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from harness.processes import Chinwag  # noqa: E402
from harness.sources import dial_from  # noqa: E402
from multiaddr import Multiaddr  # noqa: E402

from chat.waku.node import Node, NodeConfig  # noqa: E402

LOOPBACK = "/ip4/127.0.0.1/tcp/0"
WORKER_FLAG = "--hold-open-worker"
REDIAL_PAUSE = 1.0
KEPT_AFTER = 1.0
STAY = 5.0
"""Seconds a legitimate peer that got in is watched: does it stay connected?"""


def attacker_node() -> Node:
    return Node(NodeConfig(listen_addrs=[Multiaddr(LOOPBACK)]))


def hold_open_worker(
    address: str, sources: list[str], per_source: int, ramp: float, seconds: float
) -> None:
    """The attacker: hold connections to `address` from each of `sources`, each of its own
    peer id, opened evenly over 80 % of `ramp` seconds (a flood of handshakes at once would
    measure the CPU of this machine, which the attacker shares), redialling every one the
    node closes; prints its counts as JSON at the end."""
    stats = {"dials": 0, "dial_failures": 0, "closed_by_node": 0, "held_at_end": 0}
    held = 0
    spread = 0.8 * ramp / max(1, len(sources) * per_source)

    async def one(source: str, index: int) -> None:
        nonlocal held
        await trio.sleep(index * spread)
        node = attacker_node()
        async with node.run():
            while True:
                stats["dials"] += 1
                try:
                    peer = await dial_from(node.host.libp2p, address, source)
                except Exception:
                    stats["dial_failures"] += 1
                    await trio.sleep(REDIAL_PAUSE)
                    continue
                held += 1
                while node.host.is_connected(peer):  # noqa: ASYNC110 - no per-peer close event
                    await trio.sleep(0.2)
                held -= 1
                stats["closed_by_node"] += 1
                await trio.sleep(REDIAL_PAUSE)

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as stop:
            async with trio.open_nursery() as nursery:
                for slot in range(per_source):
                    for number, source in enumerate(sources):
                        nursery.start_soon(one, source, slot * len(sources) + number)
                with trio.move_on_after(seconds):
                    async for _ in stop:
                        break
                stats["held_at_end"] = held
                nursery.cancel_scope.cancel()

    logging.getLogger("libp2p").setLevel(logging.CRITICAL)  # refused dials are the point
    trio.run(run)
    print(json.dumps(stats), flush=True)


async def admitted(address: str, watch: float) -> tuple[float | None, bool]:
    """A fresh peer dials: (milliseconds the dial took, or None if it failed; whether it is
    still connected `watch` seconds later). A node at py-libp2p's limits completes the
    handshake and closes the connection right after, so a dial that returns is not enough."""
    from bench.attack import DIAL_LIMIT, client_node

    node = client_node()
    async with node.run():
        started = time.perf_counter()
        try:
            with trio.fail_after(DIAL_LIMIT):
                peer = await node.host.dial(address)
        except Exception:
            return None, False
        elapsed = (time.perf_counter() - started) * 1000
        await trio.sleep(watch)
        return elapsed, node.host.is_connected(peer)


async def admitted_series(address: str, dials: int) -> dict[str, Any]:
    times: list[float] = []
    kept = 0
    for _ in range(dials):
        elapsed, connected = await admitted(address, KEPT_AFTER)
        if elapsed is not None:
            times.append(elapsed)
        kept += connected
    return {
        "dials": dials,
        "dial_returned": len(times),
        "connected_after_1s": kept,
        "p50_ms": round(statistics.median(times), 1) if times else None,
        "max_ms": round(max(times), 1) if times else None,
    }


async def held_open_connections(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from bench.attack import scrape, start_node

    chinwag = Chinwag(workdir / "held-open")
    limits = []
    if options.open_max is not None:
        limits = ["--max-connections", str(options.open_max)]
    limits += ["--max-connections-per-ip", str(options.open_per_source)]
    sources = [f"127.0.0.{2 + n}" for n in range(options.open_sources)]
    try:
        _, address, metrics = await start_node(chinwag, *limits)
        baseline = await admitted_series(address, options.dials)
        seconds = options.open_ramp + options.dials * 11 + STAY + 30
        attacker = await trio.lowlevel.open_process(
            [sys.executable, __file__, WORKER_FLAG, address, ",".join(sources),
             str(options.open_per_source), str(options.open_ramp), str(seconds)],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        await trio.sleep(options.open_ramp)  # let it fill the node
        before = await scrape(metrics, ("chinwag_connected_peers", "chinwag_inbound_connections"))
        under_attack = await admitted_series(address, options.dials)
        stayed = (await admitted(address, STAY))[1]
        attacker.terminate()
        assert attacker.stdout is not None
        output = b""
        with trio.move_on_after(10):
            while chunk := await attacker.stdout.receive_some(65536):
                output += chunk
        await attacker.wait()
        counters = await scrape(metrics, ("chinwag_inbound_connections_total",))
    finally:
        await chinwag.close()
    return {
        "sources": len(sources),
        "per_source": options.open_per_source,
        "max_connections": options.open_max or 300,
        "baseline": baseline,
        "node_when_filled": before,
        "under_attack": under_attack,
        "newcomer_connected_after_5s": stayed,
        "attacker": json.loads(output) if output.strip() else None,
        "node_counters": counters,
    }


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == WORKER_FLAG:
        address, sources, per_source, ramp, seconds = sys.argv[2:]
        hold_open_worker(address, sources.split(","), int(per_source), float(ramp), float(seconds))
