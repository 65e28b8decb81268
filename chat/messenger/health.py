"""Health and catch-up: what the faces are told about the network, and how the messenger
recovers what it missed.

- The health view is the node's health monitor's verdict (chat/waku/health.py), with relay
  peers per shard and whether the last store query got an answer.
- Every watched topic is scanned by the store checks from its saved cursor; a catch-up
  (start, reconnect, wake) scans them all at once. The health monitor asks for catch-ups
  and waits for their outcome here.
- When relay peers return after an outage, queued messages go at once instead of after
  their backoff, and sent ones no store confirmed are sent again.
- The store query driver (chat/reliability/store_queries.py) reports its answers here.
- While offline the view says when the next dial is due, and `reconnect_now` dials at once.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from chat import events as ev
from chat.client_node import ClientNode, Received
from chat.light_node import LightClientNode, own_enr
from chat.messenger import observed
from chat.messenger.config import CATCH_UP_LIMIT
from chat.messenger.context import MessengerContext
from chat.messenger.node import MessengerNode
from chat.messenger.receive import Receiver
from chat.messenger.sending import Sending
from chat.reliability import outbox as ob
from chat.reliability.store_checks import CursorAdvanced, StoreChecks, Stored
from chat.request_budget import StrangerBudget
from chat.waku.enr.waku_fields import Capability
from chat.waku.message import WakuMessage
from chat.waku.peers import Service
from storage.repositories.reliability import SyncCursor
from storage.store import Store

log = logging.getLogger(__name__)

CONNECTION_SETTLE = 0.2
"""Seconds to let relay streams come up after a connection event before judging."""


class HealthWatch:
    def __init__(
        self,
        ctx: MessengerContext,
        node: MessengerNode,
        checks: StoreChecks,
        sending: Sending,
        receiver: Receiver,
        lock: trio.Lock,
        strangers: StrangerBudget,
    ) -> None:
        self._ctx = ctx
        self._strangers = strangers
        self._lock = lock
        self._node = node
        self._checks = checks
        self._sending = sending
        self._receiver = receiver
        self.running = False
        self.last_catch_up: float | None = None
        self._record: str | None = None
        self.store_ok: bool | None = None
        self._catch_up_done: trio.Event | None = None
        self._catch_up_groups = 0
        self._catch_ups_done = 0
        self._catch_up_failed = False

    # ---- the view ----------------------------------------------------------------------------
    def view(self) -> ev.HealthView:
        """The health monitor's verdict (chat/waku/health.py), with relay peers per shard."""
        running = self.running
        summary = self._node.health.summary()
        status = summary.state.value if running else "offline"
        reachable = {s.value: ok for s, ok in summary.reachable().items()}
        store = reachable.get(Service.STORE.value, self.store_ok)
        schedule = self._node.dial_schedule() if running else None
        next_dial_at = None
        if schedule is not None and schedule.next_dial_in is not None:
            # Rounded: views compared a moment apart must not differ by clock noise.
            next_dial_at = round(self._ctx.clock() + schedule.next_dial_in, 1)
        light: dict[str, Any] = {"enr": self._enr()} if running else {}
        if running and isinstance(self._node, LightClientNode):
            services = self._node.light_health()
            if status == "online" and services.degraded:
                status = "degraded"  # a service node lost: still working, with less margin
            light |= {
                "mode": "light",
                "light_line": services.line(),
                "light_services": {
                    "filter_held": services.filter_held,
                    "filter_wanted": services.filter_wanted,
                    "push_held": services.push_held,
                    "push_wanted": services.push_wanted,
                },
            }
        return ev.HealthView(
            **light,
            status=status,
            online=status == "online",
            peers=len(self._node.connected_peers()) if running else 0,
            peers_per_shard=self._node.relay_peers() if running else {},
            store_reachable=store,
            services=reachable,
            last_catch_up=summary.last_catch_up or self.last_catch_up,
            outbox=self._sending.pending_count(),
            stranger_requests_dropped=self._strangers.dropped,
            stranger_requests_held=len(self._strangers),
            dialing=schedule.dialing if schedule else 0,
            next_dial_at=next_dial_at,
            known_peers=schedule.known_peers if schedule else 0,
        )

    def _enr(self) -> str:
        """Made once (a signature), for the real nodes only."""
        if self._record is None:
            if isinstance(self._node, LightClientNode):
                self._record = own_enr(self._node.node, Capability(0))
            elif isinstance(self._node, ClientNode):
                self._record = own_enr(self._node.node, Capability.RELAY)
            else:
                self._record = ""
        return self._record

    async def reconnect_now(self) -> ev.HealthView:
        """Dial every known peer that is not connected, at once (the user asks)."""
        if not self.running:
            raise ev.NotPossible("the network core is not running")
        if self._node.dial_schedule().known_peers == 0:
            raise ev.NotPossible(
                "there is no peer to reconnect to: chinwag looks for peers on your local "
                "network by itself; to reach others, start it with --peer or --fleet"
            )
        await self._node.redial_now()
        view = self.view()
        self._ctx.emit(ev.HealthUpdated(view))
        return view

    async def watch_dials(self) -> None:
        """Tell faces when dials start and end: while offline the view says when the next
        one is due, and that changes with every dial."""
        last = self.view()
        async with self._node.dial_changes() as changes:
            async for _ in changes:
                current = self.view()
                if current != last:
                    self._ctx.emit(ev.HealthUpdated(current))
                last = current

    async def watch_health(self) -> None:
        async with self._node.health.subscribe() as summaries:
            async for _ in summaries:
                self._ctx.emit(ev.HealthUpdated(self.view()))

    async def watch_outages(self) -> None:
        """The end of every outage as the relay sees it: from no relay peer on any of our
        topics to some. Not the connection (on a slow link its relay streams come up seconds
        later) nor the health summary (it counts connected peers by their metadata)."""
        while True:
            await self._node.wait_relay_peers(present=False)
            await self._node.wait_relay_peers(present=True)
            self._relay_peers_returned(after_outage=True)

    async def watch_connections(self) -> None:
        """Tell faces when the network changes, and catch up after every new connection."""
        events = self._node.connection_events()
        last = self.view()
        async with events:
            async for _ in events:
                await trio.sleep(CONNECTION_SETTLE)
                current = self.view()
                relay_peers = sum(current.peers_per_shard.values())
                if current.peers > last.peers and relay_peers:
                    self._relay_peers_returned(after_outage=False)  # see watch_outages
                if current != last:
                    self._ctx.emit(ev.HealthUpdated(current))
                last = current

    def _relay_peers_returned(self, *, after_outage: bool) -> None:
        """Catch up, and send queued messages now rather than after their backoff. After an
        outage (no relay peer at all) also re-send the sent ones no store has confirmed:
        their publish may have gone into a connection that was dying (the recipient drops a
        duplicate). Not on every new connection: churn would spend their re-send budget."""
        again = (ob.State.QUEUED, ob.State.SENT) if after_outage else (ob.State.QUEUED,)
        self._checks.catch_up(self._ctx.clock())
        self._sending.due_now(again)
        self._ctx.wake_scheduler()

    # ---- catch-up ----------------------------------------------------------------------------
    async def catch_up(self, since: float | None) -> bool:
        """The health monitor asks (start, reconnect, wake): scan every watched topic from its
        cursor now; True once every scan has completed."""
        async with self._lock:
            done = self._catch_up_done = trio.Event()
            self._catch_up_groups = self._checks.group_count
            self._catch_ups_done = 0
            self._catch_up_failed = False
            self._checks.catch_up(self._ctx.clock())
        self._ctx.wake_scheduler()
        with trio.move_on_after(CATCH_UP_LIMIT):
            await done.wait()
            return not self._catch_up_failed
        return False

    def _catch_up_progress(self, *, failed: bool = False) -> None:
        if self._catch_up_done is None:
            return
        self._catch_up_failed |= failed
        self._catch_ups_done += 1
        if failed or self._catch_ups_done >= self._catch_up_groups:
            self._catch_up_done.set()
            self._catch_up_done = None

    async def after_reset(self, reason: str) -> None:
        """After a sleep or a network change."""
        # Connections are gone now; queued messages go as soon as a relay peer is back
        # (watch_connections), not now: trying while offline would only spend their budget.
        log.info("connections reset (%s): catching up once peers return", reason)
        async with self._lock:
            self._checks.catch_up(self._ctx.clock())
        self._ctx.wake_scheduler()

    # ---- what the store query driver reports (StoreAnswers) ---------------------------------
    async def stored(self, event: Stored) -> None:
        await self._sending.store_confirmed(event)

    async def cursor_advanced(self, event: CursorAdvanced, now: float) -> None:
        cursor_ms = int(event.cursor * 1000)
        cursors = [
            SyncCursor(event.pubsub_topic, topic, cursor_ms, None, int(now * 1000))
            for topic in event.content_topics
        ]

        def save(store: Store) -> None:
            with store.db.transaction():
                for cursor in cursors:
                    store.sync_cursors.save(cursor)

        await self._ctx.db.run(save)
        self.last_catch_up = now
        self._catch_up_progress()

    async def fetched(self, pubsub_topic: str, message: WakuMessage, msg_hash: bytes) -> None:
        await self._receiver.on_received(Received(pubsub_topic, message, msg_hash, "store"))

    def scan_failed(self) -> None:
        self._catch_up_progress(failed=True)

    def store_reached(self, ok: bool, code: str = "other") -> None:
        self._ctx.note(observed.StoreAnswered(ok, code))
        if self.store_ok != ok:
            self.store_ok = ok
            self._ctx.emit(ev.HealthUpdated(self.view()))


async def watch_topic(
    ctx: MessengerContext, checks: StoreChecks, pubsub_topic: str, content_topic: str
) -> None:
    """Scan this topic for missed messages from now on, from its saved cursor."""
    cursor = await ctx.db.run(lambda s: s.sync_cursors.load(pubsub_topic, content_topic))
    start = None if cursor is None else cursor.synced_until / 1000
    checks.watch(pubsub_topic, (content_topic,), start, ctx.clock())
    ctx.wake_scheduler()
