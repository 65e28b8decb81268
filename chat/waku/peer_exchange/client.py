"""Peer exchange client: ask one peer for records, keep the ones that pass the checks; and
ask a pool of service nodes in turn, failing over to the next when one does not answer.

The answer is read with a frame limit sized for what we asked (wire.max_response_frame), so
an oversized answer is refused from its length prefix, before its body is read.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from chat.waku.enr.waku_fields import WakuPeer
from chat.waku.framing import FrameTooLarge
from chat.waku.peer_exchange.core import ServicePeerPool, judge_answer
from chat.waku.peer_exchange.wire import (
    MAX_PEERS_PER_ANSWER,
    PROTOCOL,
    PeerExchangeRequest,
    PeerExchangeResponse,
    PxWireError,
    max_response_frame,
)
from chat.waku.reqres import ExchangeFailed, exchange

REQUEST_TIME_LIMIT = 10.0
DEFAULT_NUM_PEERS = 5
"""What nwaku clients ask for."""


@dataclass
class PeerExchangeResult:
    peer: str
    status_code: int | None
    """None when no usable answer came (unreachable, timeout, oversized or malformed)."""
    description: str = ""
    peers: list[WakuPeer] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    """Records refused, by reason (core.judge_answer)."""

    @property
    def succeeded(self) -> bool:
        return self.status_code == 200


async def request_peers(
    host: IHost,
    peer: ID,
    num_peers: int = DEFAULT_NUM_PEERS,
    *,
    cluster_id: int | None = None,
    time_limit: float = REQUEST_TIME_LIMIT,
) -> PeerExchangeResult:
    """Ask `peer` for up to `num_peers` records (at most MAX_PEERS_PER_ANSWER); never raises
    for anything the peer does."""
    wanted = max(1, min(num_peers, MAX_PEERS_PER_ANSWER))
    request = PeerExchangeRequest(wanted)
    try:
        frame = await exchange(
            host,
            peer,
            PROTOCOL,
            request.encode(),
            max_response_size=max_response_frame(wanted),
            time_limit=time_limit,
        )
        response = PeerExchangeResponse.decode(frame, max_records=wanted)
    except ExchangeFailed as exc:
        # exchange() raises `from None`; the framing error is still its context.
        oversized = isinstance(exc.__context__, FrameTooLarge)
        reason = f"oversized answer refused: {exc.__context__}" if oversized else str(exc)
        return PeerExchangeResult(str(peer), None, reason)
    except PxWireError as exc:
        return PeerExchangeResult(str(peer), None, f"bad answer: {exc}")
    status = response.status_code
    if status is None:
        status = 200 if response.succeeded else 503
    result = PeerExchangeResult(str(peer), status, response.status_desc or "")
    if status != 200:
        return result
    judged = judge_answer(
        response.records, own_peer_id=host.get_id().to_base58(), cluster_id=cluster_id
    )
    result.peers, result.dropped = judged.peers, judged.dropped
    return result


async def _reach(host: IHost, peer: WakuPeer, time_limit: float) -> bool:
    """Connect to a peer from its record alone (no-op when already connected)."""
    if host.get_network().get_connections(peer.peer_id):
        return True
    suffix = Multiaddr(f"/p2p/{peer.peer_id.to_base58()}")
    addrs = [a.decapsulate(suffix) for a in peer.dial_addrs]
    with trio.move_on_after(time_limit):
        try:
            await host.connect(PeerInfo(peer.peer_id, addrs))
            return True
        except Exception:  # py-libp2p raises many types for an unreachable peer
            return False
    return False


async def ask_pool(
    host: IHost,
    pool: ServicePeerPool,
    num_peers: int = DEFAULT_NUM_PEERS,
    *,
    cluster_id: int | None = None,
    time_limit: float = REQUEST_TIME_LIMIT,
) -> PeerExchangeResult | None:
    """Ask the pool's usable nodes, in order, until one answers 200; its records join the
    pool. A node that cannot be reached or does not answer 200 is set aside for the pool's
    cool-down (failover to the next). None when no node answered. A light client seeds the
    pool with one bootstrap node's record (`WakuPeer.from_text("enr:...")`)."""
    for candidate in pool.usable(trio.current_time()):
        key = candidate.peer_id.to_base58()
        result: PeerExchangeResult | None = None
        if await _reach(host, candidate, time_limit):
            result = await request_peers(
                host, candidate.peer_id, num_peers, cluster_id=cluster_id, time_limit=time_limit
            )
        if result is not None and result.succeeded:
            pool.succeeded(key)
            pool.add(result.peers)
            return result
        pool.failed(key, trio.current_time())
    return None
