"""Attack benchmark section `store_slow_readers` (run by tests/bench/attack.py): peers that
ask a real `chinwag node --store` process for full pages and then stop reading, while an
honest peer queries.

Setup as `store_memory`: a relay node and a store + light push node, M messages of S bytes
pushed through it. Then R attacker peers connect through a relay on 127.0.0.1 that can stop
reading what the node sends (tests/harness/stall_proxy.py), each opens Q store streams
(the protocol negotiated), the relay stops reading, and each stream sends its full-page
query: with the defaults (4 peers × 2 queries) they take all 8 turns that query and answer,
and their answers cannot be delivered. Then an honest peer, connected directly, asks for the
same page. Reported: the honest query's status and latency, and how long the node held the
attackers' queries (from the stall until `chinwag_requests_in_progress{protocol="store"}`
is back to 0), with the node's store counters.
"""

from __future__ import annotations

import argparse
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
from harness.stall_proxy import stall_proxy  # noqa: E402
from harness.waiting import wait_until  # noqa: E402
from libp2p.custom_types import TProtocol  # noqa: E402
from libp2p.network.stream.net_stream import NetStream  # noqa: E402
from libp2p.peer.id import ID  # noqa: E402
from multiaddr import Multiaddr  # noqa: E402

from chat.waku.framing import write_frame  # noqa: E402
from chat.waku.store.client import StoreClient, StoreClientError  # noqa: E402
from chat.waku.store.wire import PROTOCOL_ID, StoreQueryRequest  # noqa: E402

IN_PROGRESS = 'chinwag_requests_in_progress{protocol="store"}'
HONEST_LIMIT = 60.0


def full_page(request_id: str) -> StoreQueryRequest:
    from bench.attack import CONTENT_TOPIC, TOPIC

    return StoreQueryRequest(
        request_id=request_id,
        include_data=True,
        pubsub_topic=TOPIC,
        content_topics=(CONTENT_TOPIC,),
        pagination_limit=100,
    )


async def in_progress(metrics: str) -> float:
    from bench.attack import scrape

    return (await scrape(metrics, (IN_PROGRESS,))).get(IN_PROGRESS, 0.0)


async def store_slow_readers(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from bench.attack import (
        LOOSE_LIMITS,
        PROCESS_START,
        _run_forever,
        client_node,
        push_messages,
        scrape,
        start_node,
        wait_for_archive,
    )

    chinwag = Chinwag(workdir / "readers")
    limits = [a for limit in LOOSE_LIMITS for a in ("--rate-limit", limit)]
    try:
        _, relay_addr, _ = await start_node(chinwag)
        _, service_addr, metrics = await start_node(
            chinwag, "--store", "--archive", str(chinwag.data_dir / "archive.sqlite"),
            "--lightpush", "--peer", relay_addr, *limits,
        )  # fmt: skip

        async def meshed() -> bool:
            found = await scrape(metrics, ("chinwag_relay_mesh_peers",))
            return any(value >= 1 for value in found.values())

        await wait_until(meshed, PROCESS_START)
        service = ID.from_base58(Multiaddr(service_addr).value_for_protocol("p2p"))
        port = int(Multiaddr(service_addr).value_for_protocol("tcp"))
        honest = client_node()
        attackers = [client_node() for _ in range(options.readers)]
        async with trio.open_nursery() as nursery, stall_proxy(port) as proxy:
            for node in (honest, *attackers):
                await nursery.start(_run_forever, node)
            await honest.host.dial(service_addr)
            pushed = await push_messages(honest, service, options.reader_messages, options.size)
            await wait_for_archive(metrics, pushed)
            relayed = f"/ip4/127.0.0.1/tcp/{proxy.port}/p2p/{service}"
            streams: list[Any] = []
            for attacker in attackers:
                await attacker.host.dial(relayed)
                for _ in range(options.reader_queries):
                    streams.append(
                        await attacker.host.libp2p.new_stream(service, [TProtocol(PROTOCOL_ID)])
                    )
            proxy.stall()  # from here on the attackers read nothing
            stalled = time.perf_counter()
            for index, stream in enumerate(streams):
                await write_frame(stream, full_page(f"reader-{index}").encode())
                if isinstance(stream, NetStream):
                    await stream.close_write()

            async def all_admitted() -> bool:
                return await in_progress(metrics) >= len(streams)

            await wait_until(all_admitted, 30)
            started = time.perf_counter()
            try:
                answer = await StoreClient(honest.host.libp2p, timeout=HONEST_LIMIT).query(
                    service, full_page("honest")
                )
                status = str(answer.status_code)
                returned = len(answer.messages)
            except StoreClientError as exc:
                status, returned = f"failed: {exc}"[:80], 0
            honest_s = time.perf_counter() - started

            async def released() -> bool:
                return await in_progress(metrics) == 0

            await wait_until(released, 60)
            held_s = time.perf_counter() - stalled
            nursery.cancel_scope.cancel()
        counters = await scrape(metrics, ("chinwag_store_requests", "chinwag_requests_shed_total"))
    finally:
        await chinwag.close()
    return {
        "messages_pushed": pushed,
        "message_payload_kb": options.size // 1000,
        "attacker_peers": options.readers,
        "queries_per_attacker": options.reader_queries,
        "honest_status": status,
        "honest_messages": returned,
        "honest_s": round(honest_s, 2),
        "attacker_queries_held_s": round(held_s, 1),
        "node_counters": {k: v for k, v in counters.items() if "store" in k},
    }
