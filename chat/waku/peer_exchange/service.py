"""Peer exchange as a node service: answer requests from the book of records, and fill the
book by asking our own peers.

Serving: each request passes the request gate (server_gate.py) and the rate limiter before
a byte of it is read (refused: 429 for one busy peer, 503 for a full server), is read with
a small frame limit, and is answered with at most MAX_PEERS_PER_ANSWER records at the write
pace (write_pace.py). Our own record is built once the host listens (its real ports) and
goes first in every answer; `announce` replaces the listen addresses in it (a node behind
NAT or a proxy).

Learning: every connected peer that advertises peer exchange (identify) is asked, one at a
time, once per `learn_interval`; the records that pass the client's checks go into the book
(chinwag nodes put their own record first in their answers, so two chinwag nodes learn each
other's), and `on_learned` hears each new one (the node's peer manager may dial them).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence

import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from chat.waku.enr.record import Enr
from chat.waku.enr.waku_fields import Capability, RelayShards, WakuPeer, node_enr
from chat.waku.framing import FramingError, encode_frame, read_frame
from chat.waku.host import ConnectionEvent, ConnectionEventKind, TaskStatusLike, WakuHost
from chat.waku.peer_exchange.client import DEFAULT_NUM_PEERS, request_peers
from chat.waku.peer_exchange.core import EnrBook
from chat.waku.peer_exchange.wire import (
    MAX_REQUEST_FRAME,
    PROTOCOL,
    PeerExchangeRequest,
    PeerExchangeResponse,
    PxStatus,
    PxWireError,
)
from chat.waku.ratelimit import RateLimiter
from chat.waku.reqres import STREAM_ERRORS, end_served_stream, remote_peer, write_paced
from chat.waku.request_gate import GateLimits, Shed, Ticket
from chat.waku.server_gate import ServerGate
from chat.waku.write_pace import DEFAULT_PACE, WritePace

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0
PX_GATE = GateLimits(per_peer=2, total=64)
LEARN_INTERVAL = 300.0
"""Seconds between two requests of ours to the same peer."""
LEARN_CHECK = 1.0
"""How often the learning loop looks for peers to ask (identify needs a moment)."""
LEARN_NUM_PEERS = 20
TOO_MANY_REQUESTS_DESC = "too many requests"
OVERLOADED_DESC = "service overloaded, try another node"
NO_PEERS_DESC = "num_peers must be at least 1"


def wall_clock_seq() -> int:
    """A record's sequence number: the wall-clock second it was made, so a restarted node's
    record (maybe with new addresses) supersedes the old one without a stored counter."""
    return int(time.time())


class PeerExchangeServer:
    name = "peer-exchange"

    def __init__(
        self,
        capabilities: Capability,
        shards: RelayShards | None,
        *,
        rate_limiter: RateLimiter | None = None,
        announce: Sequence[Multiaddr] = (),
        learn: bool = True,
        learn_interval: float = LEARN_INTERVAL,
        on_learned: Callable[[WakuPeer], None] | None = None,
        book: EnrBook | None = None,
        rng: random.Random | None = None,
        seq: Callable[[], int] = wall_clock_seq,
        request_timeout: float = REQUEST_TIMEOUT,
        gate: GateLimits = PX_GATE,
        pace: WritePace = DEFAULT_PACE,
    ) -> None:
        self.capabilities = capabilities
        self.shards = shards
        self.rate_limiter = rate_limiter
        self.announce = tuple(announce)
        self.learn = learn
        self.learn_interval = learn_interval
        self.on_learned = on_learned
        self.book = book or EnrBook()
        self.rng = rng or random.Random()
        self.seq = seq
        self.request_timeout = request_timeout
        self.gate = ServerGate(gate)
        self.pace = pace
        self.responses: Counter[int] = Counter()
        """Answers by status code."""
        self.records_sent = 0
        self.learned_dropped: Counter[str] = Counter()
        """Records our peers sent us that failed the checks, by reason."""
        self._asked_at: dict[str, float] = {}

    @property
    def own(self) -> WakuPeer | None:
        return self.book.own

    async def serve(
        self, host: WakuHost, *, task_status: TaskStatusLike = trio.TASK_STATUS_IGNORED
    ) -> None:
        self.book.set_own(WakuPeer.from_enr(self._own_record(host)))
        assert self.own is not None
        log.info("node record %s", self.own.enr.text)
        events = host.events.subscribe()
        host.libp2p.set_stream_handler(TProtocol(PROTOCOL), self._handle)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._follow_connections, host, events)
                if self.learn:
                    nursery.start_soon(self._learn_loop, host)
                task_status.started()
                await trio.sleep_forever()
        finally:
            host.libp2p.remove_stream_handler(TProtocol(PROTOCOL))

    def _own_record(self, host: WakuHost) -> Enr:
        suffix = f"/p2p/{host.peer_id.to_base58()}"
        addrs = list(self.announce) or [
            Multiaddr(str(a).removesuffix(suffix)) for a in host.full_multiaddrs()
        ]
        secret = host.key_pair.private_key.to_bytes()
        return node_enr(secret, self.seq(), addrs, self.capabilities, self.shards)

    # -- serving ------------------------------------------------------------------------

    async def _handle(self, stream: INetStream) -> None:
        response: PeerExchangeResponse | None = None
        requester = remote_peer(stream)
        ticket = self.gate.enter(requester)
        try:
            if isinstance(ticket, Shed):
                response = _refusal(ticket)
            else:
                response = await self._answer(stream, requester, ticket)
            if response is not None:
                self.responses[response.status_code or 0] += 1
                self.records_sent += len(response.records)
                frame = encode_frame(response.encode())
                if not await write_paced(stream, (frame,), self.pace):
                    if isinstance(ticket, Ticket):
                        self.gate.slow_reader(ticket)
                    response = None  # not taken in time: reset
        except STREAM_ERRORS as exc:
            log.debug("peer exchange stream failed: %r", exc)
        finally:
            if isinstance(ticket, Ticket):
                self.gate.leave(ticket)
            await end_served_stream(stream, answered=response is not None)

    async def _answer(
        self, stream: INetStream, requester: str, ticket: Ticket
    ) -> PeerExchangeResponse | None:
        limiter = self.rate_limiter
        if limiter is not None and not limiter.allow(requester, trio.current_time()):
            return PeerExchangeResponse((), PxStatus.TOO_MANY_REQUESTS, TOO_MANY_REQUESTS_DESC)
        frame = None
        with self.gate.reading(ticket), trio.move_on_after(self.request_timeout):
            try:
                frame = await read_frame(stream, MAX_REQUEST_FRAME)
            except FramingError as exc:
                return PeerExchangeResponse((), PxStatus.BAD_REQUEST, f"bad frame: {exc}")
        if frame is None or ticket.evicted:
            return None
        try:
            request = PeerExchangeRequest.decode(frame)
        except PxWireError as exc:
            return PeerExchangeResponse((), PxStatus.BAD_REQUEST, str(exc))
        if request.num_peers < 1:
            return PeerExchangeResponse((), PxStatus.BAD_REQUEST, NO_PEERS_DESC)
        records = self.book.answer(request.num_peers, requester, trio.current_time(), self.rng)
        return PeerExchangeResponse(tuple(records), PxStatus.SUCCESS)

    # -- learning -----------------------------------------------------------------------

    async def _follow_connections(
        self, host: WakuHost, events: trio.MemoryReceiveChannel[ConnectionEvent]
    ) -> None:
        for peer in host.connected_peers():
            self.book.connected(peer.to_base58(), trio.current_time())
        async for event in events:
            key = event.peer_id.to_base58()
            if event.kind is ConnectionEventKind.OPENED:
                self.book.connected(key, trio.current_time())
            elif not host.is_connected(event.peer_id):
                self.book.disconnected(key, trio.current_time())
                self._asked_at.pop(key, None)

    async def _learn_loop(self, host: WakuHost) -> None:
        while True:
            for peer in host.connected_peers():
                if self._due(host, peer):
                    await self.learn_from(host, peer)
            await trio.sleep(LEARN_CHECK)

    def _due(self, host: WakuHost, peer: ID) -> bool:
        asked = self._asked_at.get(peer.to_base58())
        if asked is not None and trio.current_time() - asked < self.learn_interval:
            return False
        try:
            protocols = host.libp2p.get_peerstore().get_protocols(peer)
        except Exception:  # not identified yet
            return False
        return PROTOCOL in (str(p) for p in protocols)

    async def learn_from(self, host: WakuHost, peer: ID) -> int:
        """Ask one peer for records and keep the good ones; returns how many were new."""
        self._asked_at[peer.to_base58()] = trio.current_time()
        cluster = self.shards.cluster_id if self.shards is not None else None
        result = await request_peers(
            host.libp2p, peer, max(DEFAULT_NUM_PEERS, LEARN_NUM_PEERS), cluster_id=cluster
        )
        self.learned_dropped.update(result.dropped)
        if result.dropped:
            log.info("peer exchange from %s: dropped %s", peer, dict(result.dropped))
        new = 0
        for found in result.peers:
            if self.book.learn(found, trio.current_time()):
                new += 1
                if self.on_learned is not None:
                    self.on_learned(found)
        if result.status_code is None:
            log.debug("peer exchange from %s failed: %s", peer, result.description)
        return new


def _refusal(reason: Shed) -> PeerExchangeResponse:
    if reason is Shed.PEER_BUSY:
        return PeerExchangeResponse((), PxStatus.TOO_MANY_REQUESTS, TOO_MANY_REQUESTS_DESC)
    return PeerExchangeResponse((), PxStatus.SERVICE_UNAVAILABLE, OVERLOADED_DESC)
