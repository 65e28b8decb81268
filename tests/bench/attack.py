"""Attack benchmark: a real `chinwag node` process attacked black-box on loopback through its
documented interfaces, the way issue 13's attacker did.

    python tests/bench/attack.py            # full: 1000 held, 300 x 140 KB, 100 parallel
    python tests/bench/attack.py --quick    # small sizes (the CI smoke run)
    python tests/bench/attack.py --only store_memory --only contact_spam

Each measurement is one section: an async function that takes the parsed options and a work
directory and returns one JSON object; `SECTIONS` lists them in run order. A new measurement
is one more function and one more entry there. Every section prints one JSON line
{"section": name, ...}.

Sections:
- `held_connections`: dial time of a legitimate peer (a fresh py-libp2p host, full Noise +
  muxer handshake) to the node, first with nothing held (the side-by-side baseline in the
  same run), then while an attacker process holds N idle TCP connections to the node's
  libp2p port and reopens each one the node closes. Reports dials, successes, p50/max ms,
  what the attacker managed, and the node's inbound-connection counters from /metrics.
- `held_open_connections`: the same dials while an attacker fills the node's open
  connections with finished handshakes from a few addresses (tests/bench/attack_open.py),
  and whether a peer that got in stays connected.
- `store_memory`: the node's RSS (/proc/PID/status) idle, at its peak and after a burst of
  P parallel full-page store queries (include_data, page size 100) from C client peers,
  once M large messages were light-pushed through it. Rate limits are loosened for this
  section (`--rate-limit store:100000/1s` etc., stated in the output) so that what is
  measured is the node's memory bounds, not its rate limiter. The run reports idle, peak
  and after; a before/after comparison needs two runs on two versions of the code.
- `store_slow_readers`: peers that ask for full pages and stop reading, taking every turn
  that answers, while an honest peer queries (tests/bench/attack_readers.py): its status and
  latency, and how long the node held the attackers' queries.
- `contact_spam`: a contact's message latency (send -> shown, p50/p99) while S contact
  requests from fresh identities arrive over T seconds, with how many requests were kept
  and dropped (tests/bench/attack_spam.py, in process over real relay on loopback).
- `request_cost`: the cost of taking in one contact request against the backlog already
  kept, spam protection out of the way (flat when it does not grow with the backlog).

Figures to report, never asserted (tests/bench/test_attack_bench.py checks the shape).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[2]
for extra in (REPO, REPO / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import httpx  # noqa: E402
from harness.processes import Chinwag, ChinwagProcess  # noqa: E402
from harness.waiting import wait_until  # noqa: E402
from libp2p.peer.id import ID  # noqa: E402
from multiaddr import Multiaddr  # noqa: E402

from chat.waku.lightpush.client import push_once  # noqa: E402
from chat.waku.message import WakuMessage, now_ns  # noqa: E402
from chat.waku.node import Node, NodeConfig  # noqa: E402
from chat.waku.store.client import StoreClient, StoreClientError  # noqa: E402
from chat.waku.store.wire import StoreQueryRequest  # noqa: E402

LOOPBACK = "/ip4/127.0.0.1/tcp/0"
TOPIC = "/waku/2/rs/42/0"
CONTENT_TOPIC = "/attack/1/store-memory/proto"
DIAL_LIMIT = 10.0
PROCESS_START = 60.0
LOOSE_LIMITS = ("store:100000/1s", "lightpush:100000/1s", "filter:100000/1s")


# -- helpers shared by sections -----------------------------------------------------------


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def start_node(chinwag: Chinwag, *args: str) -> tuple[ChinwagProcess, str, str]:
    """A `chinwag node` process on loopback; returns it, its first multiaddr, its metrics URL."""
    process = await chinwag.start(
        "node", "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "127.0.0.1:0",
        "--node-key", str(chinwag.data_dir / f"node-{len(chinwag.processes)}.key"), *args,
    )  # fmt: skip
    header = await process.line(PROCESS_START)
    assert header.startswith("chinwag node "), header
    addrs = [await process.line()]
    while not (line := await process.line()).startswith("metrics "):
        addrs.append(line)
    return process, addrs[0], line.removeprefix("metrics ")


async def scrape(metrics_url: str, prefixes: tuple[str, ...]) -> dict[str, float]:
    """The samples of /metrics whose names start with one of `prefixes`."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(metrics_url)).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(prefixes):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def raise_fd_limit(wanted: int) -> None:
    """Every held connection is a file descriptor: raise the soft limit (up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def client_node() -> Node:
    return Node(NodeConfig(listen_addrs=[Multiaddr(LOOPBACK)]))


# -- section: a legitimate dial while idle connections are held ---------------------------


async def timed_dial(address: str) -> float | None:
    """Milliseconds for a fresh host to connect (TCP + Noise + muxer), or None on failure."""
    node = client_node()
    async with node.run():
        started = time.perf_counter()
        try:
            with trio.fail_after(DIAL_LIMIT):
                await node.host.dial(address)
        except Exception:
            return None
        return (time.perf_counter() - started) * 1000


async def dial_series(address: str, dials: int) -> dict[str, Any]:
    times: list[float] = []
    for _ in range(dials):
        elapsed = await timed_dial(address)
        if elapsed is not None:
            times.append(elapsed)
        await trio.sleep(0.2)  # each dial is on its own, not a burst
    return {
        "dials": dials,
        "ok": len(times),
        "p50_ms": round(statistics.median(times), 1) if times else None,
        "max_ms": round(max(times), 1) if times else None,
    }


def hold_worker(port: int, count: int, seconds: float) -> None:
    """The attacker: hold `count` idle TCP connections to 127.0.0.1:`port` for `seconds`,
    reopening each one the node closes; prints its counts as JSON at the end."""
    raise_fd_limit(count + 100)
    stats = {"opened": 0, "closed_by_node": 0, "connect_failures": 0, "held_at_end": 0}
    held = 0

    async def one() -> None:
        nonlocal held
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                stats["connect_failures"] += 1
                await trio.sleep(0.1)
                continue
            stats["opened"] += 1
            held += 1
            try:
                while await stream.receive_some(4096):
                    pass  # the node's multistream header; we never answer
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            finally:
                held -= 1
                await trio.aclose_forcefully(stream)
            stats["closed_by_node"] += 1

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as stop:
            async with trio.open_nursery() as nursery:
                for _ in range(count):
                    nursery.start_soon(one)
                with trio.move_on_after(seconds):
                    async for _ in stop:
                        break
                stats["held_at_end"] = held
                nursery.cancel_scope.cancel()

    trio.run(run)
    print(json.dumps(stats), flush=True)


async def held_connections(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    chinwag = Chinwag(workdir / "held")
    try:
        _, address, metrics = await start_node(chinwag)
        port = int(Multiaddr(address).value_for_protocol("tcp"))
        baseline = await dial_series(address, options.dials)
        # Long enough for the attacker to open everything and for every dial of the series.
        seconds = options.ramp + options.dials * (DIAL_LIMIT + 0.5)
        attacker = await trio.lowlevel.open_process(
            [sys.executable, __file__, "--hold-worker", str(port), str(options.held),
             str(seconds)],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        await trio.sleep(options.ramp)  # let it open its connections
        under_attack = await dial_series(address, options.dials)
        attacker.terminate()
        assert attacker.stdout is not None
        output = b""
        with trio.move_on_after(5):
            while chunk := await attacker.stdout.receive_some(65536):
                output += chunk
        await attacker.wait()
        counters = await scrape(metrics, ("chinwag_inbound_connections_total",))
    finally:
        await chinwag.close()
    return {
        "held": options.held,
        "baseline": baseline,
        "under_attack": under_attack,
        "attacker": json.loads(output) if output.strip() else None,
        "node_counters": counters,
    }


def attacker_main(port: str, count: str, seconds: str) -> None:
    hold_worker(int(port), int(count), float(seconds))


# -- section: node memory under parallel full-page store queries ------------------------------


async def push_messages(node: Node, service: ID, count: int, size: int) -> int:
    """Light-push `count` messages of `size` payload bytes; returns how many were accepted."""
    accepted = 0
    for i in range(count):
        message = WakuMessage(
            payload=i.to_bytes(4, "big") + os.urandom(size - 4),
            content_topic=CONTENT_TOPIC,
            timestamp=now_ns(),
        )
        result = await push_once(node.host.libp2p, service, message, TOPIC, time_limit=30)
        accepted += result.succeeded
    return accepted


async def wait_for_archive(metrics: str, count: int, limit: float = 60.0) -> float:
    stored = 0.0

    async def archived() -> bool:
        nonlocal stored
        found = await scrape(metrics, ("chinwag_archive_messages",))
        stored = found.get("chinwag_archive_messages", 0.0)
        return stored >= count

    await wait_until(archived, limit)  # the archive writer works in its own time
    return stored


async def query_burst(
    service_addr: str, clients: int, parallel: int
) -> tuple[dict[str, int], int, int]:
    """`parallel` full-page queries at once, spread over `clients` peers; returns statuses,
    messages and response payload bytes received."""
    statuses: dict[str, int] = {}
    totals = {"messages": 0, "bytes": 0}
    peer = ID.from_base58(Multiaddr(service_addr).value_for_protocol("p2p"))
    nodes = [client_node() for _ in range(clients)]

    async def one(store: StoreClient, index: int) -> None:
        request = StoreQueryRequest(
            request_id=f"attack-{index}",
            include_data=True,
            pubsub_topic=TOPIC,
            content_topics=(CONTENT_TOPIC,),
            pagination_limit=100,
        )
        try:
            response = await store.query(peer, request)
        except StoreClientError as exc:
            key = "no_response" if "within" in str(exc) else "stream_failed"
        else:
            key = str(response.status_code)
            totals["messages"] += len(response.messages)
            totals["bytes"] += sum(
                len(kv.message.payload) for kv in response.messages if kv.message is not None
            )
        statuses[key] = statuses.get(key, 0) + 1

    async with trio.open_nursery() as outer:
        for node in nodes:
            await outer.start(_run_forever, node)
        for node in nodes:
            await node.host.dial(service_addr)
        async with trio.open_nursery() as burst:
            for index in range(parallel):
                node = nodes[index % clients]
                burst.start_soon(one, StoreClient(node.host.libp2p, timeout=120), index)
        outer.cancel_scope.cancel()
    return statuses, totals["messages"], totals["bytes"]


async def _run_forever(node: Node, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    async with node.run():
        task_status.started()
        await trio.sleep_forever()


async def sample_rss(pid: int, peak: list[float], done: trio.Event) -> None:
    while not done.is_set():
        peak[0] = max(peak[0], rss_mb(pid))
        with trio.move_on_after(0.02):
            await done.wait()


async def store_memory(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    chinwag = Chinwag(workdir / "store")
    limits = [a for limit in LOOSE_LIMITS for a in ("--rate-limit", limit)]
    try:
        _, relay_addr, _ = await start_node(chinwag)
        service, service_addr, metrics = await start_node(
            chinwag, "--store", "--archive", str(chinwag.data_dir / "archive.sqlite"),
            "--lightpush", "--peer", relay_addr, *limits,
        )  # fmt: skip
        pid = service.process.pid

        async def meshed() -> bool:
            found = await scrape(metrics, ("chinwag_relay_mesh_peers",))
            return any(value >= 1 for value in found.values())

        await wait_until(meshed, PROCESS_START)  # gossipsub grafts on its heartbeat
        pusher = client_node()
        async with trio.open_nursery() as nursery:
            await nursery.start(_run_forever, pusher)
            service_id = await pusher.host.dial(service_addr)
            pushed = await push_messages(pusher, service_id, options.messages, options.size)
            nursery.cancel_scope.cancel()
        stored = await wait_for_archive(metrics, pushed)
        await trio.sleep(2)  # let the pushes' work settle before "idle"
        idle = rss_mb(pid)
        peak = [idle]
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample_rss, pid, peak, done)
            started = time.perf_counter()
            statuses, messages, payload = await query_burst(
                service_addr, options.clients, options.parallel
            )
            burst_s = time.perf_counter() - started
            done.set()
        after_1s = after = 0.0
        for second in range(1, options.settle + 1):
            await trio.sleep(1)
            after = rss_mb(pid)
            if second == 1:
                after_1s = after
        counters = await scrape(metrics, ("chinwag_store_", "chinwag_requests_shed_total"))
    finally:
        await chinwag.close()
    return {
        "messages_pushed": pushed,
        "messages_stored": int(stored),
        "message_payload_kb": options.size // 1000,
        "parallel_queries": options.parallel,
        "client_peers": options.clients,
        "rate_limits": list(LOOSE_LIMITS),
        "statuses": statuses,
        "messages_returned": messages,
        "payload_mb_returned": round(payload / 1e6, 1),
        "burst_s": round(burst_s, 2),
        "rss_idle_mb": round(idle, 1),
        "rss_peak_mb": round(peak[0], 1),
        "rss_peak_over_idle_mb": round(peak[0] - idle, 1),
        "rss_after_1s_mb": round(after_1s, 1),
        f"rss_after_{options.settle}s_mb": round(after, 1),
        "node_counters": counters,
    }


async def held_open_connections(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from bench.attack_open import held_open_connections as measure

    return await measure(options, workdir)


async def store_slow_readers(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from bench.attack_readers import store_slow_readers as measure

    return await measure(options, workdir)


async def contact_spam(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from bench.attack_spam import contact_latency_under_spam

    return await contact_latency_under_spam(
        options.spam, options.spam_seconds, options.contact_messages, 120.0, workdir
    )


async def request_cost(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from bench.attack_spam import request_cost_by_backlog

    return await request_cost_by_backlog(options.backlog, options.backlog_step, workdir)


# -- driver -------------------------------------------------------------------------------

Section = Callable[[argparse.Namespace, Path], Awaitable[dict[str, Any]]]
SECTIONS: dict[str, Section] = {
    "held_connections": held_connections,
    "held_open_connections": held_open_connections,
    "store_memory": store_memory,
    "store_slow_readers": store_slow_readers,
    "contact_spam": contact_spam,
    "request_cost": request_cost,
}


async def main_async(options: argparse.Namespace) -> None:
    names = options.only or list(SECTIONS)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            workdir = Path(tmp) / name  # each section its own profiles and archives
            workdir.mkdir()
            result = await SECTIONS[name](options, workdir)
            print(json.dumps({"section": name, **result}), flush=True)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--hold-worker":
        attacker_main(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (the CI smoke run)")
    parser.add_argument("--only", action="append", choices=list(SECTIONS))
    parser.add_argument("--held", type=int, help="idle connections held (full: 1000)")
    parser.add_argument("--dials", type=int, help="legitimate dials per series (full: 10)")
    parser.add_argument("--ramp", type=float, default=3.0, help="seconds to open the held set")
    parser.add_argument("--open-sources", type=int, help="attacker addresses (full: 5)")
    parser.add_argument(
        "--open-per-source", type=int, help="open connections per address (full: 64)"
    )
    parser.add_argument("--open-max", type=int, help="the node's --max-connections (full: 300)")
    parser.add_argument("--open-ramp", type=float, help="seconds to fill the node (full: 60)")
    parser.add_argument("--messages", type=int, help="messages pushed (full: 300)")
    parser.add_argument("--size", type=int, help="payload bytes per message (full: 140000)")
    parser.add_argument("--parallel", type=int, help="parallel queries (full: 100)")
    parser.add_argument("--clients", type=int, help="peers the queries come from (full: 10)")
    parser.add_argument("--settle", type=int, default=10, help="seconds to watch RSS after")
    parser.add_argument("--readers", type=int, help="peers that stop reading (full: 4)")
    parser.add_argument("--reader-queries", type=int, help="queries each (full: 2)")
    parser.add_argument("--reader-messages", type=int, help="messages in the page (full: 30)")
    parser.add_argument("--spam", type=int, help="contact requests from strangers (full: 1000)")
    parser.add_argument("--spam-seconds", type=float, help="arriving over (full: 10)")
    parser.add_argument("--contact-messages", type=int, help="a contact's messages (full: 100)")
    parser.add_argument("--backlog", type=int, help="requests for the cost run (full: 2000)")
    parser.add_argument("--backlog-step", type=int, help="measured every (full: 250)")
    options = parser.parse_args()
    full = {"held": 1000, "dials": 10, "open_sources": 5, "open_per_source": 64,
            "open_max": None, "open_ramp": 60.0, "messages": 300, "size": 140_000,
            "parallel": 100, "clients": 10, "readers": 4, "reader_queries": 2,
            "reader_messages": 30, "spam": 1000, "spam_seconds": 10.0,
            "contact_messages": 100, "backlog": 2000, "backlog_step": 250}  # fmt: skip
    quick = {"held": 60, "dials": 3, "open_sources": 3, "open_per_source": 4, "open_max": 10,
             "open_ramp": 5.0, "messages": 20, "size": 20_000, "parallel": 10,
             "clients": 2, "readers": 2, "reader_queries": 2, "reader_messages": 30,
             "spam": 60, "spam_seconds": 2.0, "contact_messages": 10, "backlog": 100,
             "backlog_step": 50}  # fmt: skip
    for key, value in (quick if options.quick else full).items():
        if getattr(options, key) is None:
            setattr(options, key, value)
    if options.quick:
        options.ramp = min(options.ramp, 1.0)
        options.settle = min(options.settle, 2)
    # py-libp2p logs every refused handshake of the dialer; the figures are the output.
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    trio.run(main_async, options)


if __name__ == "__main__":
    main()
