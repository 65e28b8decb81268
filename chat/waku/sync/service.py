"""Waku Sync as a store node service: reconciliation sessions with peers, and the transfer of
what each side lacks (chat/waku/sync/core.py decides, this moves bytes).

Every `interval` seconds (and a few seconds after a peer connects) the node starts a session
with each connected peer that speaks reconciliation, one peer at a time, over the window
[now - offset - window, now - offset) of its archive; the peer answers sessions on the same
protocol. When a session ends each side sends the messages the other lacks over the transfer
protocol, read from its archive. A received message is archived only if its peer has a
session with us that named it as missing, it belongs to a shard we serve, and it lies in the
window; anything else is refused and the peer gets a strike (core.PeerStrikes: three and it
is refused for ten minutes). Sessions we answer pass the `sync` rate limit and at most one runs
per peer.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from chat.waku.framing import (
    FrameReader,
    FramingError,
    encode_frame,
    read_frame,
    write_frame,
)
from chat.waku.message import message_hash, now_ns
from chat.waku.metrics import Metric
from chat.waku.protected import ProtectedShardError, ShardPublicKey
from chat.waku.ratelimit import RateLimiter, RequestLimiter
from chat.waku.reqres import close_quietly, end_served_stream, remote_peer
from chat.waku.store.archiver import MessageArchiver
from chat.waku.sync.core import ItemIndex, PeerStrikes, SyncLimits, SyncRefused, SyncSession
from chat.waku.sync.wire import (
    MAX_PAYLOAD_SIZE,
    MAX_TRANSFER_SIZE,
    RECONCILIATION_PROTOCOL,
    TRANSFER_PROTOCOL,
    RangeKind,
    SyncId,
    SyncPayload,
    SyncWireError,
    decode_payload,
    decode_transfer,
    encode_payload,
    encode_transfer,
)
from storage.archive import Archive, ArchiveError, ArchiveQuery, ArchiveRecord

log = logging.getLogger(__name__)

RECONCILIATION = TProtocol(RECONCILIATION_PROTOCOL)
TRANSFER = TProtocol(TRANSFER_PROTOCOL)
DEFAULT_INTERVAL = 300.0
DEFAULT_WINDOW = 3600.0
DEFAULT_OFFSET = 20.0
"""Seconds left out at the recent end: gossip may still be delivering those (nwaku's 20 s)."""
FIRST_SYNC_DELAY = 2.0
"""Seconds after a peer connects before its first session (identify has told us its protocols)."""
MAX_WINDOW_ITEMS = 200_000
"""SyncIDs one session may load from the archive; a fuller window is refused, not truncated
(a truncated set would name false differences)."""
MAX_ANSWERING = 4
"""Sessions answered at once over all peers (each holds a window's index in memory)."""
MAX_EXPECTING = 64
"""Peers whose session results we hold for their transfers; the oldest goes first."""
RETRY_DELAY = 5.0
"""Seconds (plus up to as much jitter) before a failed session is tried again."""
SESSION_TIME_LIMIT = 60.0
ROUND_TIMEOUT = 10.0
EXPECTATION_TTL = 120.0
"""Seconds a session's missing items are accepted over transfer after the session."""
TRANSFER_BATCH = 100
"""Messages read from the archive per query when sending."""
ARCHIVE_BATCH = 200
"""Received messages archived per transaction (one commit per message is disk-bound)."""


@dataclass(frozen=True)
class SyncOptions:
    interval: float = DEFAULT_INTERVAL
    window: float = DEFAULT_WINDOW
    offset: float = DEFAULT_OFFSET
    limits: SyncLimits = field(default_factory=SyncLimits)


class _BrokeRule(Exception):
    """A transferred message broke a rule; the transfer ends (the peer has its strike)."""


@dataclass
class _Expected:
    items: set[SyncId]
    window: tuple[int, int]
    until: float
    received: set[SyncId] = field(default_factory=set)


class SyncService:
    """Serves both sync protocols and syncs with connected peers; `counters` feed metrics."""

    name = "sync"

    def __init__(
        self,
        archive: Archive,
        archiver: MessageArchiver,
        pubsub_topics: Iterable[str],
        options: SyncOptions = SyncOptions(),
        *,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = trio.current_time,
        wall_clock_ns: Callable[[], int] = now_ns,
        shard_key: Callable[[str], ShardPublicKey | None] = lambda topic: None,
    ) -> None:
        """`shard_key(pubsub_topic)`: the key of a protected shard (relay's validator has
        them), whose messages must carry its signature to be archived from sync too."""
        self.archive = archive
        self.shard_key = shard_key
        self.archiver = archiver
        self.topics = tuple(sorted(set(pubsub_topics)))
        self.options = options
        self.limiter: RateLimiter = limiter or RequestLimiter(None)
        self.clock = clock
        self.wall_clock_ns = wall_clock_ns
        self.strikes = PeerStrikes()
        self.sessions: Counter[str] = Counter()
        """Sessions by outcome: completed, refused (by us), mismatch (other shards), failed."""
        self.counters: Counter[str] = Counter()
        """items_sent, items_received, bytes_sent, bytes_received, refused messages."""
        self._expected: dict[str, _Expected] = {}
        self._answering: set[str] = set()
        self._initiating: set[str] = set()
        self._sent: dict[str, tuple[float, set[bytes]]] = {}
        """Per peer, hashes sent lately: two sessions that overlap name the same items once."""
        self._due: dict[ID, float] = {}
        self._db = trio.CapacityLimiter(1)
        self._libp2p: Any = None

    async def serve(self, host: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        libp2p = self._libp2p = host.libp2p
        libp2p.set_stream_handler(RECONCILIATION, self._answer_session)
        libp2p.set_stream_handler(TRANSFER, self._receive_transfer)
        try:
            task_status.started()
            await self._sync_loop(host)
        finally:
            libp2p.remove_stream_handler(RECONCILIATION)
            libp2p.remove_stream_handler(TRANSFER)

    # -- the initiating side

    async def _sync_loop(self, host: Any) -> None:
        while True:
            now = self.clock()
            connected = set(host.connected_peers())
            for peer in list(self._due):
                if peer not in connected:
                    del self._due[peer]
            for peer in connected:
                # Jitter: two nodes that meet should not both start a session at once.
                self._due.setdefault(peer, now + FIRST_SYNC_DELAY * (1 + random.random()))
            for peer, due in sorted(self._due.items(), key=lambda entry: entry[1]):
                if due <= now and str(peer) not in self._answering:
                    if not _speaks_sync(host, peer):
                        # Not identified yet, or not a sync peer: look again later.
                        self._due[peer] = now + FIRST_SYNC_DELAY
                        continue
                    self._due[peer] = now + self.options.interval
                    if await self.sync_with(peer) == "failed":
                        # Retry soon (the peer may have been busy with a session of its own).
                        # The jitter must survive a short interval: two peers that refused
                        # each other in step would otherwise retry in step, forever.
                        delay = min(RETRY_DELAY, self.options.interval)
                        self._due[peer] = now + delay * (1 + random.random())
            await trio.sleep(min(1.0, self.options.interval))

    def window_ns(self) -> tuple[int, int]:
        end = self.wall_clock_ns() - int(self.options.offset * 1e9)
        return end - int(self.options.window * 1e9), end

    async def sync_with(self, peer: ID) -> str:
        """One session with `peer` as initiator, then the transfer of what it lacks. Returns
        the outcome: completed, refused, mismatch (the peer syncs other shards) or failed."""
        start, end = self.window_ns()
        try:
            index = await self._load_index(start, end)
        except (ArchiveError, SyncRefused) as exc:
            log.warning("sync with %s not started: %s", peer, exc)
            self.sessions["refused"] += 1
            return "refused"
        session = SyncSession(index, self.topics, self.options.limits)
        key = str(peer)
        stream = None
        self._initiating.add(key)
        try:
            with trio.fail_after(SESSION_TIME_LIMIT):
                assert self._libp2p is not None, "serve() first"
                stream = await self._libp2p.new_stream(peer, [RECONCILIATION])
                payload = session.start(start, end)
                while True:
                    await self._send_payload(stream, payload)
                    if not payload.ranges:
                        break
                    received = await self._read_payload(stream)
                    if not session.same_topics(received):
                        log.info("sync with %s: it syncs other topics %s %s", peer,
                                 received.pubsub_topics, received.content_topics)  # fmt: skip
                        self.sessions["mismatch"] += 1
                        return "mismatch"
                    if not received.ranges:
                        session.received_final()
                        break
                    payload = session.respond(received)
                    self._expect(key, session, (start, end))
        except (SyncWireError, SyncRefused) as exc:
            log.info("sync with %s refused: %s", peer, exc)
            self.strikes.strike(key, self.clock())
            self.sessions["refused"] += 1
            return "refused"
        except Exception as exc:  # a broken stream or peer ends this exchange only
            log.debug("sync with %s failed: %r", peer, exc)
            self.sessions["failed"] += 1
            return "failed"
        finally:
            self._initiating.discard(key)
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await close_quietly(stream)
        self.sessions["completed"] += 1
        await self._send_missing(peer, session.we_have)
        return "completed"

    # -- the answering side

    def _keeps_own_session(self, peer: str) -> bool:
        """Two peers that open a session to each other at once: the one with the greater ID
        keeps its own and refuses the other's; the other answers (its own session is refused),
        so one of the two sessions always runs."""
        return self._libp2p is None or str(self._libp2p.get_id()) > peer

    async def _answer_session(self, stream: Any) -> None:
        peer = remote_peer(stream)
        now = self.clock()
        if (
            self.strikes.banned(peer, now)
            or peer in self._answering
            or len(self._answering) >= MAX_ANSWERING
            or (peer in self._initiating and self._keeps_own_session(peer))
            or not self.limiter.allow(peer, now)
        ):
            self.sessions["refused"] += 1
            await end_served_stream(stream, answered=False)
            return
        self._answering.add(peer)
        session: SyncSession | None = None
        completed = False
        try:
            with trio.fail_after(SESSION_TIME_LIMIT):
                while True:
                    received = await self._read_payload(stream)
                    if session is None:
                        window = _window_of(received)
                        session = SyncSession(
                            await self._load_index(*window), self.topics, self.options.limits
                        )
                    if not session.same_topics(received):
                        # Not an offence: the session just ends (an empty answer, as nwaku's).
                        self.sessions["mismatch"] += 1
                        await self._send_payload(stream, SyncPayload())
                        completed = True
                        session = None
                        break
                    if not received.ranges:
                        session.received_final()
                        completed = True
                        break
                    payload = session.respond(received)
                    self._expect(peer, session, window)
                    await self._send_payload(stream, payload)
                    if not payload.ranges:
                        completed = True
                        break
        except (SyncWireError, SyncRefused) as exc:
            log.info("sync session from %s refused: %s", peer, exc)
            self.strikes.strike(peer, self.clock())
            self.sessions["refused"] += 1
        except Exception as exc:  # a broken stream or peer ends this exchange only
            log.debug("sync session from %s failed: %r", peer, exc)
            self.sessions["failed"] += 1
        finally:
            self._answering.discard(peer)
            await end_served_stream(stream, answered=completed)
        if completed and session is not None:  # (None: a shard mismatch, counted above)
            self.sessions["completed"] += 1
            # The peer just synced with us: our own session with it can wait its interval.
            peer_id = stream.muxed_conn.peer_id
            if peer_id in self._due:
                self._due[peer_id] = self.clock() + self.options.interval
            await self._send_missing(stream.muxed_conn.peer_id, session.we_have)

    # -- payloads

    async def _send_payload(self, stream: Any, payload: SyncPayload) -> None:
        data = encode_payload(payload)
        self.counters["bytes_sent"] += len(data)
        self.counters["reconciliation_bytes_sent"] += len(data)
        with trio.fail_after(ROUND_TIMEOUT):
            await write_frame(stream, data)

    async def _read_payload(self, stream: Any) -> SyncPayload:
        with trio.fail_after(ROUND_TIMEOUT):
            data = await read_frame(stream, MAX_PAYLOAD_SIZE)
        self.counters["bytes_received"] += len(data)
        self.counters["reconciliation_bytes_received"] += len(data)
        return decode_payload(data)

    async def _load_index(self, start: int, end: int) -> ItemIndex:
        """Our SyncIDs in [start, end) on the shards we serve."""

        def load() -> list[SyncId]:
            items: list[SyncId] = []
            for topic in self.topics:
                query = ArchiveQuery(
                    pubsub_topic=topic,
                    time_start=start,
                    time_end=end - 1,
                    limit=MAX_WINDOW_ITEMS + 1 - len(items),
                )
                items.extend((row.timestamp, row.message_hash) for row in self.archive.query(query))
                if len(items) > MAX_WINDOW_ITEMS:
                    raise SyncRefused(f"the window holds more than {MAX_WINDOW_ITEMS} messages")
            return items

        return ItemIndex(await trio.to_thread.run_sync(load, limiter=self._db))

    # -- transfer

    def _expect(self, peer: str, session: SyncSession, window: tuple[int, int]) -> None:
        now = self.clock()
        for key in [k for k, v in self._expected.items() if v.until < now]:
            del self._expected[key]
        entry = self._expected.get(peer)
        if entry is None:
            while len(self._expected) >= MAX_EXPECTING:
                del self._expected[next(iter(self._expected))]
            entry = self._expected[peer] = _Expected(set(), window, 0.0)
        entry.items |= session.we_need
        entry.window = (min(entry.window[0], window[0]), max(entry.window[1], window[1]))
        entry.until = now + EXPECTATION_TTL

    async def _send_missing(self, peer: ID, missing: set[SyncId]) -> None:
        """Send the messages in `missing` from our archive over a new transfer stream."""
        if not missing or self._libp2p is None:
            return
        now = self.clock()
        for key in [k for k, (until, _) in self._sent.items() if until < now]:
            del self._sent[key]
        _, sent = self._sent.setdefault(str(peer), (now + EXPECTATION_TTL, set()))
        hashes = [digest for _, digest in sorted(missing) if digest not in sent]
        sent.update(hashes)
        if not hashes:
            return
        stream = None
        first = 0
        try:
            # Each step has its own deadline: a large gap takes as long as it takes, a stalled
            # reader does not.
            with trio.fail_after(ROUND_TIMEOUT):
                stream = await self._libp2p.new_stream(peer, [TRANSFER])
            for first in range(0, len(hashes), TRANSFER_BATCH):
                batch = tuple(hashes[first : first + TRANSFER_BATCH])
                query = ArchiveQuery(message_hashes=batch, limit=len(batch), include_data=True)
                rows = await trio.to_thread.run_sync(self.archive.query, query, limiter=self._db)
                frames = [
                    encode_frame(encode_transfer(row.pubsub_topic, row.message))
                    for row in rows
                    if row.message is not None and row.pubsub_topic is not None
                ]
                chunk = b"".join(frames)  # one write per batch, not per message
                with trio.fail_after(ROUND_TIMEOUT):
                    await stream.write(chunk)
                self.counters["items_sent"] += len(frames)
                self.counters["bytes_sent"] += len(chunk)
        except Exception as exc:  # a broken stream or peer ends this exchange only
            log.info("sending %d messages to %s failed: %r", len(missing), peer, exc)
            sent.difference_update(hashes[first:])  # the next session sends the rest
        finally:
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await close_quietly(stream)

    async def _receive_transfer(self, stream: Any) -> None:
        peer = remote_peer(stream)
        entry = self._expected.get(peer)
        if entry is None or self.strikes.banned(peer, self.clock()):
            self.counters["refused_unasked"] += 1
            self.strikes.strike(peer, self.clock())
            await end_served_stream(stream, answered=False)
            return
        answered = True
        reader = FrameReader(stream, MAX_TRANSFER_SIZE)
        batch: list[ArchiveRecord] = []
        try:
            while entry.items:
                with trio.fail_after(ROUND_TIMEOUT):
                    data = await reader.next_frame()
                if data is None:
                    break
                self.counters["bytes_received"] += len(data)
                try:
                    record = self._take(peer, entry, data)
                except _BrokeRule:
                    answered = False
                    break
                if record is not None:
                    batch.append(record)
                if len(batch) >= ARCHIVE_BATCH:
                    await self._archive(batch)
        except FramingError as exc:
            log.info("transfer from %s is malformed: %s", peer, exc)
            self.strikes.strike(peer, self.clock())
        except Exception as exc:  # a broken stream or peer ends this exchange only
            log.debug("transfer from %s failed: %r", peer, exc)
        finally:
            with trio.CancelScope(shield=True):
                await self._archive(batch)  # what arrived before a refusal or failure is kept
                await end_served_stream(stream, answered=answered)

    async def _archive(self, batch: list[ArchiveRecord]) -> None:
        if batch:
            # Awaited first: `counters[k] += await ...` reads the count before the await, and
            # a transfer archived meanwhile would be lost from it.
            added = await self.archiver.archive_synced(batch)
            self.counters["items_received"] += added
            batch.clear()

    def _take(self, peer: str, entry: _Expected, data: bytes) -> ArchiveRecord | None:
        """The record to archive for one transferred message, or None for one to leave out;
        raises _BrokeRule (after a strike) if the peer broke a rule."""
        try:
            received = decode_transfer(data)
        except SyncWireError as exc:
            self._refuse(peer, "malformed", str(exc))
        if received.pubsub_topic not in self.topics:
            self._refuse(peer, "other_shard", received.pubsub_topic)
        message = received.message
        digest = message_hash(received.pubsub_topic, message)
        item = (message.timestamp, digest)
        if item in entry.received:
            self.counters["duplicates"] += 1
            return None
        if item not in entry.items or not entry.window[0] <= message.timestamp < entry.window[1]:
            self._refuse(peer, "unasked", digest.hex()[:16])
        entry.items.discard(item)
        entry.received.add(item)
        entry.until = self.clock() + EXPECTATION_TTL  # a long transfer keeps its session alive
        if message.ephemeral:
            self.counters["not_stored_ephemeral"] += 1
            return None
        key = self.shard_key(received.pubsub_topic)
        if key is not None:
            try:
                key.check_signature(received.pubsub_topic, message)
            except ProtectedShardError as exc:
                self._refuse(peer, "unsigned", f"protected shard: {exc}")
        return ArchiveRecord(
            digest,
            received.pubsub_topic,
            message.content_topic,
            message.timestamp,
            received.encoded,
        )

    def _refuse(self, peer: str, reason: str, detail: str) -> NoReturn:
        log.info("sync transfer from %s refused (%s): %s", peer, reason, detail)
        self.counters[f"refused_{reason}"] += 1
        self.strikes.strike(peer, self.clock())
        raise _BrokeRule(reason)


def _speaks_sync(host: Any, peer: ID) -> bool:
    """Whether identify says the peer serves reconciliation (peers without it are skipped)."""
    try:
        protocols = host.libp2p.get_peerstore().get_protocols(peer)
    except Exception:  # not identified yet
        return False
    return RECONCILIATION_PROTOCOL in (str(p) for p in protocols)


def _window_of(payload: SyncPayload) -> tuple[int, int]:
    """The time span a session's first payload covers: from its start (after a leading skip)
    up to its last bound (a bound with a hash covers its timestamp too)."""
    ranges = payload.ranges
    if not ranges:
        return (0, 0)
    start = ranges[0].upper[0] if ranges[0].kind is RangeKind.SKIP else payload.start
    last = ranges[-1].upper
    end = last[0] + (1 if any(last[1]) else 0)
    return (start, end)


def sync_metrics(service: SyncService) -> list[Metric]:
    """The sync service's counters as `chinwag_sync_*` metrics (docs/operator-guide.md)."""
    counters = service.counters
    refused = {
        key.removeprefix("refused_"): value
        for key, value in counters.items()
        if key.startswith("refused_")
    }
    return [
        Metric.by_label(
            "chinwag_sync_sessions_total",
            "counter",
            "Sync sessions (started or answered), by outcome (mismatch: the peer syncs other "
            "pubsub topics or filters content topics).",
            "outcome",
            {o: service.sessions[o] for o in ("completed", "refused", "mismatch", "failed")},
        ),
        Metric.by_label(
            "chinwag_sync_messages_total",
            "counter",
            "Messages sent to and received from sync peers (received: newly archived).",
            "direction",
            {"sent": counters["items_sent"], "received": counters["items_received"]},
        ),
        Metric.by_label(
            "chinwag_sync_bytes_total",
            "counter",
            "Bytes of reconciliation payloads and transfer messages, by direction.",
            "direction",
            {"sent": counters["bytes_sent"], "received": counters["bytes_received"]},
        ),
        Metric.by_label(
            "chinwag_sync_refused_total",
            "counter",
            "Transfers refused, by reason (malformed, other_shard, unasked, unsigned).",
            "reason",
            {"malformed": 0, "other_shard": 0, "unasked": 0, "unsigned": 0, **refused},
        ),
        Metric.single(
            "chinwag_sync_strikes_total",
            "counter",
            "Strikes against sync peers that broke a rule (three in ten minutes: refused).",
            service.strikes.total,
        ),
    ]
