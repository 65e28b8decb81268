"""Reconnect benchmark: how long from a link coming back to health online with catch-up done,
and how many dials a client spends on a peer that stays unreachable.

One process, real py-libp2p hosts on 127.0.0.1. A service node (relay + store) is cut by
stopping it (listener and connections gone, as when its link drops) and restored by starting
it again on the same address with the same identity. The client is a relay node with the
peer manager and health (`chat.waku.connectivity`), its catch-up a real store query.

Prints JSON lines:
- one per cut: {"kind": "cut", "cut": i, "outage_s", "recovery_s"} where recovery is from the
  service node listening again to the client's health ONLINE with a catch-up after it;
- {"kind": "recovery", "cuts", "p50_s", "p95_s", "max_s"};
- {"kind": "unreachable", "seconds", "dials", "dials_per_minute"} for a peer that is down
  the whole time (the backoff at work: no dial storm).
Figures to report, never asserted.

    python tests/bench/reconnect.py [--cuts 20] [--outage 2] [--stable 6] [--unreachable 60]
                                    [--offline-redial SECONDS]

`--offline-redial 0` runs the client with backoff alone (no short redial interval while it
has no peer: how chinwag behaved before issue 15), for a side-by-side comparison.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from libp2p.peer.id import ID  # noqa: E402
from multiaddr import Multiaddr  # noqa: E402

from chat.waku.connectivity import Connectivity, ConnectivityOptions  # noqa: E402
from chat.waku.health import HealthState  # noqa: E402
from chat.waku.host import generate_node_key  # noqa: E402
from chat.waku.message import now_ns  # noqa: E402
from chat.waku.node import Node, NodeConfig  # noqa: E402
from chat.waku.peers import PeerPolicy, Service  # noqa: E402
from chat.waku.relay.service import RelayService  # noqa: E402
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions  # noqa: E402
from chat.waku.store.client import StoreClient  # noqa: E402
from chat.waku.store.wire import StoreQueryRequest  # noqa: E402
from chat.waku.validation import RelayValidator  # noqa: E402

SHARDS = (0,)
TOPIC = "/waku/2/rs/42/0"
LOOPBACK = "/ip4/127.0.0.1/tcp/0"
POLICY = PeerPolicy()
"""The client's peer policy (main() may replace it from --offline-redial)."""


class Server:
    """A relay + store node that can be stopped and started on one address and key."""

    def __init__(self, nursery: trio.Nursery, archive: Path) -> None:
        self._nursery = nursery
        self.archive = archive
        self.key = generate_node_key()
        self.port = 0
        self.address = ""
        self._scope: trio.CancelScope | None = None

    async def start(self) -> None:
        self._scope = await self._nursery.start(self._run)

    def stop(self) -> None:
        assert self._scope is not None
        self._scope.cancel()

    async def _run(self, task_status: Any) -> None:
        listen = Multiaddr(f"/ip4/127.0.0.1/tcp/{self.port}")
        config = ServiceNodeConfig(
            node=NodeConfig(listen_addrs=[listen], shards=SHARDS, key_pair=self.key),
            store=StoreOptions(archive_path=self.archive),
        )
        with trio.CancelScope() as scope:
            async with ServiceNode(config).run() as node:
                full = node.node.full_multiaddrs()[0]
                self.port = int(full.value_for_protocol("tcp"))
                self.address = str(full)
                task_status.started(scope)
                await trio.sleep_forever()


def client_connectivity(
    node: Node, store_addr: str | None, catch_ups: list[float] | None = None
) -> Connectivity:
    options = ConnectivityOptions(
        store_peers=(store_addr,) if store_addr else (),
        required_services=(Service.STORE,),
        rendezvous=False,
        peer_policy=POLICY,
    )
    connectivity = Connectivity(node, options)
    store = StoreClient(node.host.libp2p, timeout=5.0)
    if catch_ups is None:
        catch_ups = []

    async def catch_up(since: float | None) -> bool:
        for peer in connectivity.peers.store_peers():
            request = StoreQueryRequest(request_id=f"bench-{len(catch_ups)}", pubsub_topic=TOPIC)
            try:
                response = await store.query(peer, request)
            except Exception:
                connectivity.peers.record(peer, Service.STORE, False)
                continue
            connectivity.peers.record(peer, Service.STORE, response.status_code == 200)
            if response.status_code == 200:
                catch_ups.append(trio.current_time())
                return True
        return False

    connectivity.health.set_catch_up(catch_up)
    return connectivity


async def wait_state(connectivity: Connectivity, state: HealthState, limit: float) -> None:
    with trio.fail_after(limit):
        updates = connectivity.health.subscribe()  # starts with the current summary
        async with updates:
            async for summary in updates:
                if summary.state is state:
                    return


async def recovery_times(cuts: int, outage: float, stable: float, workdir: Path) -> list[float]:
    times: list[float] = []
    async with trio.open_nursery() as nursery:
        server = Server(nursery, workdir / "archive.sqlite")
        await server.start()
        node = Node(NodeConfig(listen_addrs=[Multiaddr(LOOPBACK)], shards=SHARDS))
        catch_ups: list[float] = []
        connectivity = client_connectivity(node, server.address, catch_ups)
        await node.mount(RelayService([TOPIC], validator=RelayValidator(clock=now_ns)))
        await connectivity.mount()
        async with node.run():
            await wait_state(connectivity, HealthState.ONLINE, 30)
            for i in range(cuts):
                # A connection that dies within the peer manager's flap window counts as a
                # failed dial (backoff grows); cuts of a settled link wait that long first.
                await trio.sleep(stable)
                server.stop()
                await wait_state(connectivity, HealthState.OFFLINE, 30)
                await trio.sleep(outage)
                restored = trio.current_time()  # includes the server's own start (~10 ms)
                await server.start()
                # ONLINE needs relay peers, a store peer and a catch-up that succeeded.
                await wait_state(connectivity, HealthState.ONLINE, 60)
                assert catch_ups and catch_ups[-1] >= restored, "online without a catch-up"
                times.append(trio.current_time() - restored)
                print(json.dumps({"kind": "cut", "cut": i, "outage_s": outage,
                                  "recovery_s": round(times[-1], 3)}), flush=True)  # fmt: skip
        nursery.cancel_scope.cancel()
    return times


async def dials_while_unreachable(seconds: float) -> dict[str, Any]:
    # A port held bound but not listening: every dial is refused, and nobody else can take it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        peer_id = ID.from_pubkey(generate_node_key().public_key).to_base58()
        dead = f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id}"
        node = Node(NodeConfig(listen_addrs=[Multiaddr(LOOPBACK)], shards=SHARDS))
        connectivity = client_connectivity(node, None)
        connectivity.peers.add_address(dead)
        await connectivity.mount()
        async with node.run():
            await trio.sleep(seconds)
            dials = connectivity.peers.stats().dials_started
    return {
        "kind": "unreachable",
        "seconds": seconds,
        "dials": dials,
        "dials_per_minute": round(dials * 60.0 / seconds, 2),
    }


async def main_async(cuts: int, outage: float, stable: float, unreachable: float) -> None:
    # Wall time for these measurements is the point of a benchmark.
    with tempfile.TemporaryDirectory() as tmp:
        times = await recovery_times(cuts, outage, stable, Path(tmp))
    print(json.dumps({
        "kind": "recovery",
        "cuts": len(times),
        "p50_s": round(statistics.median(times), 3),
        "p95_s": round(sorted(times)[max(0, round(0.95 * len(times)) - 1)], 3),
        "max_s": round(max(times), 3),
    }), flush=True)  # fmt: skip
    print(json.dumps(await dials_while_unreachable(unreachable)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cuts", type=int, default=20)
    parser.add_argument("--outage", type=float, default=2.0, help="seconds each cut lasts")
    parser.add_argument("--stable", type=float, default=6.0, help="seconds online before each cut")
    parser.add_argument("--unreachable", type=float, default=60.0, help="seconds to count dials")
    parser.add_argument(
        "--offline-redial",
        type=float,
        default=PeerPolicy().offline_redial,
        help="the peer policy's redial interval while offline (0: backoff alone)",
    )
    args = parser.parse_args()
    global POLICY
    POLICY = PeerPolicy(offline_redial=args.offline_redial or None)
    print(json.dumps({"kind": "policy", "offline_redial_s": POLICY.offline_redial}), flush=True)
    started = time.monotonic()
    trio.run(main_async, args.cuts, args.outage, args.stable, args.unreachable)
    print(json.dumps({"kind": "done", "wall_s": round(time.monotonic() - started, 1)}))


if __name__ == "__main__":
    main()
