"""Peer exchange decisions, sans-IO: which records a server hands out, which records a client
keeps, and which service node a client asks next. Time is injected (monotonic seconds).

Server: an `EnrBook` holds our own record and records learned from peers. It hands out a
record only while that peer is alive to us (connected now, or within `alive_window`), so a
dead node's record is not passed around for ever; the book is bounded, the least recently
alive record going first.

Client: `judge_answer` checks every record of an answer (size, RLP, signature, a dialable
address, our cluster, not ourselves, no repeats) and counts the ones it drops by reason.
`ServicePeerPool` keeps the few service nodes found that way for failover: a node that fails
is set aside for a cool-down and the next one is used.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from chat.waku.enr.record import BadSignature, EnrError, RecordTooLarge
from chat.waku.enr.waku_fields import Capability, WakuPeer
from chat.waku.peer_exchange.wire import MAX_PEERS_PER_ANSWER

BOOK_CAPACITY = 256
ALIVE_WINDOW = 600.0
"""Seconds after its last connection that a peer's record is still handed out."""
POOL_SIZE = 8
COOL_DOWN = 60.0


@dataclass(slots=True)
class _Entry:
    peer: WakuPeer
    alive_at: float | None
    """When we last saw the peer connected (None: never, only heard of it)."""


class EnrBook:
    """The records a server may hand out, by base58 peer id."""

    def __init__(self, capacity: int = BOOK_CAPACITY, alive_window: float = ALIVE_WINDOW) -> None:
        self.capacity = capacity
        self.alive_window = alive_window
        self.own: WakuPeer | None = None
        self._entries: dict[str, _Entry] = {}
        self._connected: set[str] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def set_own(self, peer: WakuPeer) -> None:
        self.own = peer

    def learn(self, peer: WakuPeer, now: float) -> bool:
        """Keep a verified record (a newer seq replaces an older one); True if it is new."""
        key = peer.peer_id.to_base58()
        if self.own is not None and key == self.own.peer_id.to_base58():
            return False
        entry = self._entries.get(key)
        if entry is not None:
            if peer.enr.seq > entry.peer.enr.seq:
                entry.peer = peer
            return False
        alive = now if key in self._connected else None
        self._entries[key] = _Entry(peer, alive)
        self._evict()
        return True

    def connected(self, peer_id: str, now: float) -> None:
        self._connected.add(peer_id)
        entry = self._entries.get(peer_id)
        if entry is not None:
            entry.alive_at = now

    def disconnected(self, peer_id: str, now: float) -> None:
        if peer_id in self._connected:
            self._connected.discard(peer_id)
            entry = self._entries.get(peer_id)
            if entry is not None:
                entry.alive_at = now

    def knows(self, peer_id: str) -> bool:
        return peer_id in self._entries

    def alive(self, now: float) -> list[WakuPeer]:
        """Records of peers connected now or within the alive window."""
        return [
            e.peer
            for key, e in self._entries.items()
            if key in self._connected
            or (e.alive_at is not None and now - e.alive_at <= self.alive_window)
        ]

    def answer(
        self,
        num_peers: int,
        requester: str,
        now: float,
        rng: random.Random,
        cap: int = MAX_PEERS_PER_ANSWER,
    ) -> list[bytes]:
        """Up to min(num_peers, cap) records: ours first, then a random sample of the live
        ones, never the requester's own."""
        wanted = min(num_peers, cap)
        out: list[bytes] = []
        if self.own is not None and wanted > 0:
            out.append(self.own.enr.raw)
        others = [p for p in self.alive(now) if p.peer_id.to_base58() != requester]
        take = min(wanted - len(out), len(others))
        out += [p.enr.raw for p in rng.sample(others, take)] if take > 0 else []
        return out

    def _evict(self) -> None:
        while len(self._entries) > self.capacity:
            idle = [k for k in self._entries if k not in self._connected]
            if not idle:
                return
            oldest = min(idle, key=lambda k: self._entries[k].alive_at or float("-inf"))
            del self._entries[oldest]


@dataclass
class Judged:
    """What a client keeps of one answer, and why it dropped the rest."""

    peers: list[WakuPeer] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)


def judge_answer(
    records: Iterable[bytes], *, own_peer_id: str | None = None, cluster_id: int | None = None
) -> Judged:
    """Every record that passes; the others counted by reason: too_large, bad_signature,
    malformed, no_address, other_cluster, ourselves, duplicate."""
    judged = Judged()
    seen: set[str] = set()
    for record in records:
        try:
            peer = WakuPeer.decode(record)
        except RecordTooLarge:
            judged.dropped["too_large"] += 1
            continue
        except BadSignature:
            judged.dropped["bad_signature"] += 1
            continue
        except EnrError:
            judged.dropped["malformed"] += 1
            continue
        key = peer.peer_id.to_base58()
        if not peer.dial_addrs:
            reason = "no_address"
        elif (
            cluster_id is not None
            and peer.shards is not None
            and peer.shards.cluster_id != cluster_id
        ):
            reason = "other_cluster"
        elif key == own_peer_id:
            reason = "ourselves"
        elif key in seen:
            reason = "duplicate"
        else:
            seen.add(key)
            judged.peers.append(peer)
            continue
        judged.dropped[reason] += 1
    return judged


class ServicePeerPool:
    """A light client's few service nodes, in the order found; failed ones cool down."""

    def __init__(self, size: int = POOL_SIZE, cool_down: float = COOL_DOWN) -> None:
        self.size = size
        self.cool_down = cool_down
        self._peers: dict[str, WakuPeer] = {}
        self._resting_until: dict[str, float] = {}
        self.failovers = 0

    def __len__(self) -> int:
        return len(self._peers)

    def add(self, peers: Sequence[WakuPeer]) -> int:
        """Add new peers while there is room; returns how many were added."""
        added = 0
        for peer in peers:
            key = peer.peer_id.to_base58()
            if key in self._peers:
                if peer.enr.seq > self._peers[key].enr.seq:
                    self._peers[key] = peer
                continue
            if len(self._peers) >= self.size:
                break
            self._peers[key] = peer
            added += 1
        return added

    def usable(self, now: float, capability: Capability | None = None) -> list[WakuPeer]:
        """Peers not cooling down (and serving `capability`, if given), in pool order."""
        return [
            p
            for key, p in self._peers.items()
            if self._resting_until.get(key, float("-inf")) <= now
            and (capability is None or p.serves(capability))
        ]

    def pick(self, now: float, capability: Capability | None = None) -> WakuPeer | None:
        usable = self.usable(now, capability)
        return usable[0] if usable else None

    def failed(self, peer_id: str, now: float) -> None:
        """The peer did not answer: rest it, so `pick` moves on to the next one."""
        if peer_id in self._peers:
            self._resting_until[peer_id] = now + self.cool_down
            self.failovers += 1

    def succeeded(self, peer_id: str) -> None:
        self._resting_until.pop(peer_id, None)

    def forget(self, peer_id: str) -> None:
        self._peers.pop(peer_id, None)
        self._resting_until.pop(peer_id, None)
