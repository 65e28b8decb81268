"""The messenger's events as telemetry events (docs/telemetry.md, "Where events come
from"). `observe` runs on the message path, for every event the messenger emits: dictionary
lookups, an HMAC for a new message reference, one `Recorder.record`; never a wait.

    outgoing message, first time sent (or stored/delivered) -> msg_sent{accepted}, with the
        path and peers of the transport's evidence (Published, just before)
    ... stored by a store node                              -> msg_confirm{store_seen}
    ... acknowledged by every recipient                     -> msg_confirm{e2e_ack}
    ... failed: never sent -> msg_sent{error}; sent, never acknowledged -> msg_confirm{e2e_timeout}
    incoming message (the first copy: the messenger dedupes) -> msg_recv, `via` from the
        ReceivedVia fact just before
    a frame names messages we do not hold (SDS)             -> gap_detected{seq_gap}
    one of those arrives later                              -> gap_recovered (store/resend)
    a store query fails                                     -> error{store}
    a received message refused                              -> error{node, protocol}
    a conversation seen (at start, or new)                  -> conv_join

The facts (chat/messenger/observed.py) reach observers only, never the faces. The heartbeat
task sends the bandwidth meter's deltas (chat/messenger/bandwidth.py), the connectivity seen
since the previous heartbeat, store answers, filter subscriptions held, failed dials by
cause, and the message counters.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from chat import events as ev
from chat.messenger import observed
from chat.messenger.bandwidth import Counters, heartbeat_delta, heartbeat_totals
from chat.telemetry import identifiers
from chat.telemetry.recorder import Recorder
from chat.telemetry.schema import DIAL_FAILURES, HEARTBEAT_PERIOD_S, MAX_COUNT

CONV_KINDS = {"direct": "dm", "group": "group", "community": "channel"}
REMEMBERED = 4096
"""Message ids whose last recorded state is kept (so each transition is recorded once); the
same bound holds the facts waiting for their message and the missing messages watched."""
ERRORS_PER_PERIOD = 10
"""`error` events per component and code between two heartbeats: a store node down for an
hour, or a flood of forged envelopes, must not fill the outbox (the heartbeat's `store.fail`
and the node's own counters keep the totals)."""
RECV_VIA = {"relay": "relay", "filter": "filter", "store": "store", "sds": "released"}


class TelemetrySource(Protocol):
    """What the hook needs of the messenger (chat.messenger.Messenger)."""

    def observe(self, observer: Callable[[ev.Event], None]) -> None: ...

    def conversation_secret(self, chat_id: str) -> tuple[str, bytes, int] | None: ...

    async def chats(self) -> list[ev.ChatView]: ...

    async def bandwidth(self) -> ev.BandwidthView: ...

    def health(self) -> ev.HealthView: ...

    def telemetry_figures(self) -> observed.TelemetryFigures: ...


@dataclass(frozen=True, slots=True)
class ConversationRefs:
    key: bytes
    conv_ref: str
    conv_kind: str
    size_bucket: str


class MessengerTelemetry:
    def __init__(
        self,
        recorder: Recorder,
        source: TelemetrySource,
        *,
        came_online: Callable[[], None] = lambda: None,
    ) -> None:
        self.recorder = recorder
        self._source = source
        self._came_online = came_online
        self._refs: dict[str, ConversationRefs] = {}
        self._states: OrderedDict[str, str] = OrderedDict()
        self._online: bool | None = None
        self._online_since = trio.current_time()
        self.online_s = 0.0
        self.offline_s = 0.0
        self._peers: tuple[int, int] | None = None
        """Fewest and most peers seen since the last heartbeat."""
        self._via: OrderedDict[str, str] = OrderedDict()
        self._published: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._missing: OrderedDict[str, tuple[str, float]] = OrderedDict()
        """Missing message id -> (chat id, when found, monotonic)."""
        self._store = {"ok": 0, "fail": 0}
        self._errors: Counter[tuple[str, str]] = Counter()
        self._dials: dict[str, int] = {}
        """Failed dials by cause at the previous heartbeat (the node counts totals)."""
        self.mode = source.telemetry_figures().mode
        self.closed = False

    # -- the message path ------------------------------------------------------------------
    def observe(self, event: ev.Event) -> None:
        if self.closed:
            return
        if isinstance(event, ev.MessageAdded | ev.MessageUpdated):
            message = event.message
            if message.outgoing:
                self._outgoing(message)
            elif isinstance(event, ev.MessageAdded) and message.kind == "text":
                self._incoming(message)
        elif isinstance(event, observed.ReceivedVia):
            _keep(self._via, event.message_id, event.via)
        elif isinstance(event, observed.Published):
            _keep(self._published, event.message_id, (event.path, event.peers))
        elif isinstance(event, observed.GapFound):
            self._gap(event)
        elif isinstance(event, observed.StoreAnswered):
            self._store["ok" if event.ok else "fail"] += 1
            if not event.ok:
                self._error("store", event.code)
        elif isinstance(event, ev.Rejected):
            self._error("node", "protocol")
        elif isinstance(event, ev.HealthUpdated):
            self._health(event.health)
        elif isinstance(event, ev.ChatUpdated) and event.chat.id not in self._refs:
            self._join(event.chat.id)

    def _outgoing(self, message: ev.MessageView) -> None:
        if message.kind != "text":
            return
        before = self._states.get(message.id)
        state = message.state
        if state == before:
            return
        self._remember(message.id, state)
        if before is None and state == "queued":
            return
        refs = self._conversation(message.chat_id)
        if refs is None:
            return
        ref = identifiers.msg_ref(refs.key, message.id.encode())
        delay = max(0, int((self.recorder.wall_now() - message.timestamp) * 1000))
        # Only a step seen from `queued` is a send: after a restart the hook first sees a
        # message already sent (in an earlier session, which reported it).
        if state in ("sent", "stored", "delivered") and before == "queued":
            self._sent(message, refs, ref, "accepted")
        if state == "stored":
            self._confirm(ref, "store_seen", delay)
        elif state == "delivered":
            self.recorder.count("confirmed")
            self._confirm(ref, "e2e_ack", delay)
        elif state == "failed":
            self.recorder.count("expired")
            if before == "queued":
                self._sent(message, refs, ref, "error")
            elif before is not None:
                self._confirm(ref, "e2e_timeout", delay)

    def _sent(self, message: ev.MessageView, refs: ConversationRefs, ref: str, result: str) -> None:
        if message.total_attempts <= 1 or result != "accepted":
            # Once per message, as the report counts distinct sent messages: a re-send
            # after a restart (a later attempt) is an event, not another message.
            self.recorder.count("sent")
        default_path = "lightpush" if self.mode == "light" else "relay"
        path, peers = self._published.pop(message.id, (default_path, 0))
        fields: dict[str, Any] = {
            "msg_ref": ref,
            "conv_ref": refs.conv_ref,
            "size_bucket": identifiers.size_bucket(len(message.text.encode())),
            "path": path,
            "peers_used": min(peers, 1000),
            "result": result,
            "attempt": max(1, min(message.total_attempts, 1000)),
        }
        if result != "accepted":
            fields["err"] = "other"
        self.recorder.record("msg_sent", fields)

    def _confirm(self, ref: str, kind: str, delay_ms: int) -> None:
        fields = {"msg_ref": ref, "kind": kind, "delay_ms": min(delay_ms, 10**9)}
        self.recorder.record("msg_confirm", fields)

    def _incoming(self, message: ev.MessageView) -> None:
        self.recorder.count("recv")
        refs = self._conversation(message.chat_id)
        if refs is None:
            return
        received = message.received_at or self.recorder.wall_now()
        latency = int((received - message.timestamp) * 1000)
        via = RECV_VIA.get(self._via.pop(message.id, "relay"), "relay")
        self._recovered(message.id, refs, via)
        self.recorder.record(
            "msg_recv",
            {
                "msg_ref": identifiers.msg_ref(refs.key, message.id.encode()),
                "conv_ref": refs.conv_ref,
                "via": via,
                "lat_ms": max(-(10**9), min(latency, 10**10)),
                "decrypt_ok": True,
            },
        )

    def _error(self, component: str, code: str) -> None:
        self._errors[component, code] += 1
        if self._errors[component, code] <= ERRORS_PER_PERIOD:
            self.recorder.record("error", {"component": component, "code": code})

    def _gap(self, found: observed.GapFound) -> None:
        """Messages a frame names that we do not hold: each counted once, however many
        later frames name it again, and watched for its arrival."""
        new = [m for m in found.message_ids if m not in self._missing]
        if not new:
            return
        self.recorder.count("gaps", len(new))
        now = trio.current_time()
        for message_id in new:
            _keep(self._missing, message_id, (found.chat_id, now))
        refs = self._conversation(found.chat_id)
        if refs is not None:
            fields = {"conv_ref": refs.conv_ref, "method": "seq_gap", "window_s": 0}
            self.recorder.record("gap_detected", {**fields, "n_missing": min(len(new), 10**6)})

    def _recovered(self, message_id: str, refs: ConversationRefs, via: str) -> None:
        found = self._missing.pop(message_id, None)
        if found is None:
            return
        after_ms = int((trio.current_time() - found[1]) * 1000)
        self.recorder.record(
            "gap_recovered",
            {
                "conv_ref": refs.conv_ref,
                "n": 1,
                "via": "store" if via == "store" else "resend",
                "after_ms": max(0, min(after_ms, 10**10)),
            },
        )

    def _remember(self, message_id: str, state: str) -> None:
        self._states[message_id] = state
        self._states.move_to_end(message_id)
        if len(self._states) > REMEMBERED:
            self._states.popitem(last=False)

    def _conversation(self, chat_id: str) -> ConversationRefs | None:
        refs = self._refs.get(chat_id)
        if refs is None:
            refs = self._join(chat_id)
        return refs

    def _join(self, chat_id: str) -> ConversationRefs | None:
        found = self._source.conversation_secret(chat_id)
        if found is None:
            return None
        kind, secret, members = found
        key = identifiers.telemetry_key(secret)
        refs = ConversationRefs(
            key,
            identifiers.conv_ref(key),
            CONV_KINDS.get(kind, "channel"),
            identifiers.member_bucket(members),
        )
        self._refs[chat_id] = refs
        self.recorder.record(
            "conv_join",
            {
                "conv_ref": refs.conv_ref,
                "conv_kind": refs.conv_kind,
                "size_bucket": refs.size_bucket,
            },
        )
        return refs

    def _health(self, health: ev.HealthView) -> None:
        self._account_online(health.online)
        self._see_peers(health.peers)
        self.recorder.net = "online" if health.online else "offline"

    def _see_peers(self, peers: int) -> None:
        low, high = self._peers or (peers, peers)
        self._peers = (min(low, peers), max(high, peers))

    def _account_online(self, online: bool | None) -> None:
        now = trio.current_time()
        spent = now - self._online_since
        if self._online:
            self.online_s += spent
        elif self._online is not None:
            self.offline_s += spent
        self._online_since = now
        if online is not None:
            if online and self._online is False:
                self._came_online()
            self._online = online

    # -- the heartbeat ---------------------------------------------------------------------
    async def run(
        self, period: float = HEARTBEAT_PERIOD_S, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        """conv_join for every conversation, then a heartbeat every `period` seconds (and
        one when cancelled, for the session's last stretch)."""
        for chat in await self._source.chats():
            if chat.id not in self._refs:
                self._join(chat.id)
        self._health(self._source.health())
        totals = heartbeat_totals(await self._source.bandwidth())
        task_status.started()
        try:
            while True:
                await trio.sleep(period)
                totals = await self.heartbeat(totals)
        finally:
            # The session's last stretch; from here on events are not recorded, so what the
            # last heartbeat counts and the events sent match (the report reconciles them).
            self.closed = True
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await self.heartbeat(totals)

    async def heartbeat(self, before: tuple[Counters, Counters]) -> tuple[Counters, Counters]:
        after = heartbeat_totals(await self._source.bandwidth())
        health = self._source.health()
        self._account_online(health.online)
        self._see_peers(health.peers)
        fewest, most = self._peers or (health.peers, health.peers)
        self._peers = None
        figures = self._source.telemetry_figures()
        dials = {
            cause: min(count - self._dials.get(cause, 0), MAX_COUNT)
            for cause, count in figures.dial_failures.items()
            if count > self._dials.get(cause, 0) and cause in DIAL_FAILURES
        }
        self._dials = dict(figures.dial_failures)
        store, self._store = self._store, {"ok": 0, "fail": 0}
        self._errors.clear()
        online_s, offline_s = int(self.online_s), int(self.offline_s)
        self.online_s -= online_s
        self.offline_s -= offline_s
        self.recorder.record(
            "heartbeat",
            {
                "online_s": min(online_s, 10**6),
                "offline_s": min(offline_s, 10**6),
                "peers": {
                    "min": min(fewest, 10_000),
                    "max": min(most, 10_000),
                    "last": min(health.peers, 10_000),
                },
                "filter_subs": min(figures.filter_subs, 10_000),
                "store": store,
                "dial_fail": dials,
                "bw": heartbeat_delta(before[0], after[0]),
                "bw_kind": heartbeat_delta(before[1], after[1]),
                "msgs": self.recorder.take_messages(),
            },
        )
        return after


def _keep(remembered: OrderedDict[str, Any], key: str, value: Any) -> None:
    """Remember the newest REMEMBERED entries (a fact whose message never comes is forgotten)."""
    remembered[key] = value
    remembered.move_to_end(key)
    if len(remembered) > REMEMBERED:
        remembered.popitem(last=False)
