"""The telemetry wire format, shared by the client and the collector (docs/telemetry.md is
its public dictionary, generated from the same declarations: `dictionary()`).

Sans-IO: plain data in, checked data or a sentence out. A batch is one JSON object:

    {"schema_version": 1, "batch_id": UUID, "install_id": UUID, "client_sent_at": ms,
     "app": {"version", "platform", "python", "stack", "mode"},
     "health": {"outbox_len", "oldest_pending_age_s", "dropped_total": {type: n},
                "upload_failures_total"},
     "events": [event, ...]}

and each event carries the common fields (`id`, `seq`, `sid`, `type`, `t`, `up_ms`, `net`)
plus the fields of its type (`EVENT_TYPES`). Every key is known, every string is an enum, a
version token, a UUID or a blinded reference (32 hex digits): there is no field where free
text (a message, a name, a key, a topic) could travel. Every number has bounds.

An envelope that breaks the rules makes the whole batch invalid (`SchemaError`); an event
that breaks them is rejected on its own, with its reason, and the rest of the batch stands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

SCHEMA_VERSION: Final = 1
SUPPORTED_VERSIONS: Final = (1,)

MAX_EVENTS_PER_BATCH: Final = 500
MAX_BATCH_BYTES: Final = 4 * 1024 * 1024
"""A batch's JSON, uncompressed."""
MAX_COMPRESSED_BYTES: Final = 1024 * 1024
"""A batch's body as sent (gzip or not)."""
MAX_STRING: Final = 32
MAX_COUNT: Final = 2**40
"""Bound of every counter (bytes included: a terabyte per heartbeat is already absurd)."""
MAX_SEQ: Final = 2**53 - 1
PAST_LIMIT_MS: Final = 30 * 86_400_000
"""An event's `t` may be at most 30 days before the collector's clock..."""
FUTURE_LIMIT_MS: Final = 3_600_000
"""...and at most one hour after it (a client clock ahead of the collector's)."""
HEARTBEAT_PERIOD_S: Final = 300

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_REF = re.compile(r"^[0-9a-f]{32}$")
_TOKEN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$")
"""A version token: `0.1.0`, `3.12`, `py-libp2p-0.8.1`; no spaces, so no sentences."""

SENSITIVITY_TECHNICAL: Final = "technical"
SENSITIVITY_INTERACTION: Final = "interaction"
"""Categories after Mozilla's data review: technical data about the app and network, and
interaction data (that this install sent or received a message, and when)."""

RETENTION_RAW: Final = "raw events 30 days, derived tables 90 days"


class SchemaError(ValueError):
    """A batch (or registration) that breaks the wire format, with one sentence saying how."""


# ---------------------------------------------------------------------------------------------
# Field declarations: each knows how to check a value and how to explain itself.


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    meaning: str
    why: str
    optional: bool = False
    sensitivity: str = SENSITIVITY_TECHNICAL

    def check(self, value: Any, where: str) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class IntField(Field):
    low: int = 0
    high: int = MAX_COUNT

    def check(self, value: Any, where: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"'{where}' must be a whole number")
        if not self.low <= value <= self.high:
            raise SchemaError(f"'{where}' must be from {self.low} to {self.high}")
        return value

    def describe(self) -> str:
        return f"integer {self.low}..{self.high}"


@dataclass(frozen=True, slots=True)
class BoolField(Field):
    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, bool):
            raise SchemaError(f"'{where}' must be true or false")
        return value

    def describe(self) -> str:
        return "true/false"


@dataclass(frozen=True, slots=True)
class EnumField(Field):
    values: tuple[str, ...] = ()

    def check(self, value: Any, where: str) -> Any:
        if value not in self.values or not isinstance(value, str):
            raise SchemaError(f"'{where}' must be one of {', '.join(self.values)}")
        return value

    def describe(self) -> str:
        return "one of " + " | ".join(self.values)


@dataclass(frozen=True, slots=True)
class PatternField(Field):
    """A string of a fixed shape: a UUID, a blinded reference or a version token."""

    pattern: re.Pattern[str] = _TOKEN
    shape: str = "a version token (1-32 of A-Z a-z 0-9 . + _ -, no spaces)"

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, str) or len(value) > 36 or not self.pattern.match(value):
            raise SchemaError(f"'{where}' must be {self.shape}")
        return value

    def describe(self) -> str:
        return self.shape


@dataclass(frozen=True, slots=True)
class ObjectField(Field):
    """A JSON object with exactly known keys (each its own field, optional or not)."""

    fields: tuple[Field, ...] = ()

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, dict):
            raise SchemaError(f"'{where}' must be an object")
        return check_object(value, self.fields, where)

    def describe(self) -> str:
        return "object {" + ", ".join(f.name for f in self.fields) + "}"


@dataclass(frozen=True, slots=True)
class CountsField(Field):
    """An object from a closed set of names to counters; absent names are zero."""

    keys: tuple[str, ...] = ()
    high: int = MAX_COUNT

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, dict):
            raise SchemaError(f"'{where}' must be an object")
        unknown = sorted(set(value) - set(self.keys))
        if unknown:
            raise SchemaError(f"'{where}' has unknown key(s): {', '.join(unknown[:5])}")
        for key, count in value.items():
            IntField(key, "", "", high=self.high).check(count, f"{where}.{key}")
        return value

    def describe(self) -> str:
        return "counts by " + " | ".join(self.keys)


def check_object(value: Mapping[str, Any], fields: Sequence[Field], where: str) -> dict[str, Any]:
    known = {f.name: f for f in fields}
    unknown = sorted(set(value) - set(known))
    if unknown:
        prefix = f"'{where}' has" if where else "it has"
        raise SchemaError(f"{prefix} unknown field(s): {', '.join(unknown[:5])}")
    checked: dict[str, Any] = {}
    for item in fields:
        path = f"{where}.{item.name}" if where else item.name
        if item.name not in value or value[item.name] is None:
            if not item.optional:
                raise SchemaError(f"'{path}' is missing")
            continue
        checked[item.name] = item.check(value[item.name], path)
    return checked


def _uuid(name: str, meaning: str, why: str) -> PatternField:
    return PatternField(name, meaning, why, pattern=_UUID, shape="a random UUID (version 4)")


def _ref(name: str, meaning: str, why: str) -> PatternField:
    return PatternField(
        name,
        meaning,
        why,
        pattern=_REF,
        shape="a blinded reference (32 hex digits)",
        sensitivity=SENSITIVITY_INTERACTION,
    )


def _count(name: str, meaning: str, why: str, high: int = MAX_COUNT) -> IntField:
    return IntField(name, meaning, why, high=high)


# ---------------------------------------------------------------------------------------------
# Enums.

NET_STATES: Final = ("online", "degraded", "offline")
MODES: Final = ("relay", "light")
PLATFORMS: Final = ("linux", "macos", "windows", "other")
CONV_KINDS: Final = ("dm", "group", "channel")
SIZE_BUCKETS: Final = ("lt1k", "1k-4k", "4k-16k", "16k-64k", "gt64k")
MEMBER_BUCKETS: Final = ("2", "3-10", "11-100", "gt100")
SEND_PATHS: Final = ("relay", "lightpush")
SEND_RESULTS: Final = ("accepted", "rejected", "no_peers", "error")
SEND_ERRORS: Final = ("none", "timeout", "rate_limited", "too_large", "encrypt", "other")
CONFIRM_KINDS: Final = ("store_seen", "store_timeout", "e2e_ack", "e2e_timeout", "resent")
RECV_VIA: Final = ("relay", "filter", "store", "released", "resend")
GAP_METHODS: Final = ("seq_gap", "store_diff")
RECOVERY_VIA: Final = ("store", "resend")
START_REASONS: Final = ("launch", "opt_in", "resume")
END_REASONS: Final = ("quit", "opt_out", "unclean")
ERROR_COMPONENTS: Final = ("node", "store", "filter", "lightpush", "storage", "api", "ui", "other")
ERROR_CODES: Final = ("timeout", "refused", "protocol", "decode", "full", "crash", "other")
BANDWIDTH_PROTOCOLS: Final = (
    "relay",
    "store",
    "filter",
    "lightpush",
    "metadata",
    "identify",
    "discovery",
    "other",
)
BANDWIDTH_KINDS: Final = ("chat", "receipt", "sync", "request", "control", "other")
DIAL_FAILURES: Final = ("timeout", "refused", "negotiation", "limit", "other")
MESSAGE_COUNTERS: Final = ("sent", "recv", "dup", "confirmed", "expired", "gaps")

# ---------------------------------------------------------------------------------------------
# Event types.


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    level: str
    """The consent level that sends it: `health` or `reliability` (which includes health)."""
    meaning: str
    fields: tuple[Field, ...]
    feeds: str
    """What the report computes from it."""


LEVELS: Final = ("off", "health", "reliability")

_CONV_REF = _ref(
    "conv_ref",
    "HMAC of the conversation's telemetry key (identifiers.conv_ref): the same on every member. "
    "The key comes from a secret the members hold: a 1:1 chat's pair secret (made in the "
    "encrypted contact request and answer), a group's signed creation, a channel's public id.",
    "matches a message's receivers to its conversation without naming it",
)
_MSG_REF = _ref(
    "msg_ref",
    "HMAC of the message's app id under the conversation's telemetry key (identifiers.msg_ref).",
    "matches a sender's report with its receivers' reports",
)
_PEERS = ObjectField(
    "peers",
    "connected peers during the period: fewest, most, at its end",
    "connectivity health",
    fields=(
        _count("min", "fewest", "", 10_000),
        _count("max", "most", "", 10_000),
        _count("last", "at the end", "", 10_000),
    ),
)
_DIRECTION = (_count("in", "bytes received", ""), _count("out", "bytes sent", ""))
_BANDWIDTH = ObjectField(
    "bw",
    "bytes in and out per protocol since the previous heartbeat",
    "finds the protocols that cost the most bandwidth",
    optional=True,
    fields=tuple(
        ObjectField(p, f"{p} protocol", "", optional=True, fields=_DIRECTION)
        for p in BANDWIDTH_PROTOCOLS
    ),
)
_BANDWIDTH_KINDS = ObjectField(
    "bw_kind",
    "messages and bytes per message kind since the previous heartbeat",
    "finds the kinds of traffic (chat, receipts, sync, gossip control) that cost the most",
    optional=True,
    fields=tuple(
        ObjectField(
            k,
            f"{k} traffic",
            "",
            optional=True,
            fields=(_count("n", "messages", ""), _count("bytes", "bytes", "")),
        )
        for k in BANDWIDTH_KINDS
    ),
)

EVENT_TYPES: Final[Mapping[str, EventType]] = {
    e.name: e
    for e in (
        EventType(
            "session_start",
            "health",
            "the app started counting (launch, opt-in, resume after pause)",
            (
                EnumField(
                    "mode", "relay node or light client", "split results by mode", values=MODES
                ),
                EnumField("reason", "why the session started", "presence", values=START_REASONS),
            ),
            "presence, coverage",
        ),
        EventType(
            "session_end",
            "health",
            "the session ended; `unclean` is sent at the next start, `t` = its last heartbeat",
            (
                EnumField("reason", "how it ended", "presence, crash rate", values=END_REASONS),
                _count("duration_s", "length of the session in seconds", "presence", 10**8),
            ),
            "presence",
        ),
        EventType(
            "heartbeat",
            "health",
            f"every {HEARTBEAT_PERIOD_S} s and at the end of a session; counters are deltas since "
            "the previous heartbeat",
            (
                _count("online_s", "seconds online in the period", "real-time denominators", 10**6),
                _count("offline_s", "seconds offline in the period", "offline time", 10**6),
                _PEERS,
                ObjectField(
                    "mesh_peers",
                    "relay mesh peers (relay mode only)",
                    "gossip health",
                    optional=True,
                    fields=(_count("min", "fewest", "", 10_000), _count("max", "most", "", 10_000)),
                ),
                _count(
                    "filter_subs",
                    "filter subscriptions held at the heartbeat (content topics times service "
                    "nodes holding them; 0 in relay mode)",
                    "light-mode health",
                    10_000,
                ),
                ObjectField(
                    "store",
                    "store queries answered and failed since the previous heartbeat (one per "
                    "store node asked)",
                    "history sync health",
                    fields=(_count("ok", "succeeded", ""), _count("fail", "failed", "")),
                ),
                CountsField(
                    "dial_fail",
                    "failed dials since the previous heartbeat by cause: timeout (no answer in "
                    "time), refused (nothing listens), negotiation (security or multiplexer), "
                    "limit (a resource or rate limit), other",
                    "connectivity health",
                    keys=DIAL_FAILURES,
                ),
                _BANDWIDTH,
                _BANDWIDTH_KINDS,
                CountsField(
                    "msgs",
                    "messages sent, received, duplicates, confirmed, expired, gaps",
                    "totals that survive dropped per-message events (reconciliation)",
                    keys=MESSAGE_COUNTERS,
                    sensitivity=SENSITIVITY_INTERACTION,
                ),
            ),
            "presence, real-time denominator, bandwidth, reconciliation",
        ),
        *(
            EventType(
                name,
                "reliability",
                meaning,
                (
                    _CONV_REF,
                    EnumField("conv_kind", "direct, group or channel", "split", values=CONV_KINDS),
                    EnumField("size_bucket", "members, bucketed", "split", values=MEMBER_BUCKETS),
                ),
                "expected receivers",
            )
            for name, meaning in (
                (
                    "conv_join",
                    "this install counts the conversation from now on (sent on joining and at "
                    "every session start)",
                ),
                ("conv_leave", "this install stops counting the conversation"),
            )
        ),
        EventType(
            "msg_sent",
            "reliability",
            "one attempt to send a message",
            (
                _MSG_REF,
                _CONV_REF,
                EnumField("size_bucket", "payload size, bucketed", "split", values=SIZE_BUCKETS),
                EnumField("path", "relay or light push", "split", values=SEND_PATHS),
                _count(
                    "peers_used",
                    "relay: the relay peers the message was sent to; light push: the relay "
                    "peers the service node said it reached; 0 when it failed",
                    "send health",
                    1000,
                ),
                EnumField("result", "what the network said", "send success", values=SEND_RESULTS),
                EnumField(
                    "err", "why it failed", "send failures", optional=True, values=SEND_ERRORS
                ),
                IntField("attempt", "attempt number, from 1", "retries", low=1, high=1000),
            ),
            "sent set, pairs, send success",
        ),
        EventType(
            "msg_confirm",
            "reliability",
            "a sent message was confirmed (or not) by a store node or the receivers",
            (
                _MSG_REF,
                EnumField("kind", "which confirmation", "confirmation rates", values=CONFIRM_KINDS),
                _count("delay_ms", "milliseconds after sending", "confirmation delay", 10**9),
            ),
            "send and end-to-end confirmation rates",
        ),
        EventType(
            "msg_recv",
            "reliability",
            "the first receipt of a message on this install (duplicates: heartbeat `msgs.dup`)",
            (
                _MSG_REF,
                _CONV_REF,
                EnumField(
                    "via",
                    "how it arrived: relay (gossip), filter (pushed by a service node, light "
                    "mode), store (fetched by a store query: catch-up or a gap filled), "
                    "released (held back until an earlier message was given up; its own path "
                    "is no longer known); resend is reserved",
                    "split delivery paths",
                    values=RECV_VIA,
                ),
                IntField("lat_ms", "receiver-side latency", "latency", low=-(10**9), high=10**10),
                BoolField("decrypt_ok", "it decrypted", "decryption failures"),
            ),
            "delivery, latency",
        ),
        EventType(
            "gap_detected",
            "reliability",
            "a received message names earlier ones this install does not hold (SDS causal "
            "history); each missing message counted once",
            (
                _CONV_REF,
                EnumField("method", "how the gap was found", "gap rate", values=GAP_METHODS),
                _count("n_missing", "messages missing", "gap rate", 10**6),
                _count("window_s", "seconds the check covered", "gap rate", 10**8),
            ),
            "receiver-local gap rate",
        ),
        EventType(
            "gap_recovered",
            "reliability",
            "a message counted missing (gap_detected) arrived after all",
            (
                _CONV_REF,
                _count("n", "messages recovered", "recovery rate", 10**6),
                EnumField(
                    "via",
                    "store (a store fetch) or resend (the sender's copy came by relay or filter)",
                    "recovery paths",
                    values=RECOVERY_VIA,
                ),
                _count("after_ms", "milliseconds after detection", "recovery delay", 10**10),
            ),
            "recovery rate",
        ),
        EventType(
            "error",
            "health",
            "something failed (no free text: a component and a code). Sent today: a store "
            "query that failed (store: timeout, refused, decode, other) and a received "
            "message refused (node/protocol: undecryptable, forged, replayed or malformed)",
            (
                EnumField("component", "where", "error rates", values=ERROR_COMPONENTS),
                EnumField("code", "what", "error rates", values=ERROR_CODES),
            ),
            "error rates",
        ),
    )
}

COMMON_FIELDS: Final[tuple[Field, ...]] = (
    _uuid("id", "random id of the event", "the collector counts a replayed event once"),
    IntField(
        "seq",
        "per-install sequence number, gap-free, given when the event is stored",
        "measures telemetry's own loss",
        high=MAX_SEQ,
    ),
    _uuid("sid", "random id of the app session", "presence and clock correction"),
    EnumField("type", "event type", "", values=tuple(EVENT_TYPES)),
    IntField("t", "wall clock at occurrence (ms since 1970)", "when it happened", high=2**45),
    _count("up_ms", "milliseconds since the session started", "orders events", 2**45),
    EnumField(
        "net", "the app's view of its connectivity then", "offline periods", values=NET_STATES
    ),
)

APP_FIELDS: Final[tuple[Field, ...]] = (
    PatternField("version", "chinwag's version", "split results by version"),
    EnumField("platform", "operating system family", "split", values=PLATFORMS),
    PatternField("python", "Python major.minor", "split"),
    PatternField("stack", "node stack and its version", "split"),
    EnumField("mode", "relay node or light client", "split", values=MODES),
)

HEALTH_FIELDS: Final[tuple[Field, ...]] = (
    _count("outbox_len", "events waiting in the local outbox", "telemetry backlog", 10**7),
    _count("oldest_pending_age_s", "age of the oldest waiting event", "telemetry lag", 10**8),
    CountsField(
        "dropped_total",
        "events dropped by the client since opt-in, by type (caps, full queue)",
        "telemetry's own loss, reconciled with heartbeat totals",
        keys=(*EVENT_TYPES, "schema_violation"),
    ),
    _count("upload_failures_total", "failed uploads since opt-in", "telemetry health"),
)

BATCH_FIELDS: Final[tuple[Field, ...]] = (
    IntField("schema_version", "wire format version", "", low=1, high=1000),
    _uuid("batch_id", "random id of the upload", "a retried upload is counted once"),
    _uuid("install_id", "random id given at registration", "groups one install's events"),
    IntField("client_sent_at", "wall clock at upload (ms)", "clock skew correction", high=2**45),
    ObjectField("app", "the app", "splits", fields=APP_FIELDS),
    ObjectField("health", "telemetry about telemetry", "telemetry loss", fields=HEALTH_FIELDS),
)

REGISTER_FIELDS: Final[tuple[Field, ...]] = (
    IntField("schema_version", "wire format version", "", low=1, high=1000),
    PatternField("cohort_code", "the code of a dogfood wave", "groups results", optional=True),
)

# ---------------------------------------------------------------------------------------------
# Checked values.


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    seq: int
    sid: str
    type: str
    t: int
    up_ms: int
    net: str
    fields: Mapping[str, Any]
    """The type's own fields, checked."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "sid": self.sid,
            "type": self.type,
            "t": self.t,
            "up_ms": self.up_ms,
            "net": self.net,
            **self.fields,
        }


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    id: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Batch:
    schema_version: int
    batch_id: str
    install_id: str
    client_sent_at: int
    app: Mapping[str, Any]
    health: Mapping[str, Any]
    events: tuple[Event, ...]
    rejected: tuple[Rejected, ...] = field(default=())


def check_event(value: Any, *, now_ms: int) -> Event:
    """One event, checked against its type; `SchemaError` says what is wrong."""
    if not isinstance(value, dict):
        raise SchemaError("an event must be an object")
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise SchemaError("'type' must be one of " + ", ".join(EVENT_TYPES))
    checked = check_object(value, (*COMMON_FIELDS, *EVENT_TYPES[kind].fields), "")
    if not now_ms - PAST_LIMIT_MS <= checked["t"] <= now_ms + FUTURE_LIMIT_MS:
        raise SchemaError("'t' is more than 30 days in the past or an hour in the future")
    common = {f.name for f in COMMON_FIELDS}
    return Event(
        id=checked["id"],
        seq=checked["seq"],
        sid=checked["sid"],
        type=kind,
        t=checked["t"],
        up_ms=checked["up_ms"],
        net=checked["net"],
        fields={k: v for k, v in checked.items() if k not in common},
    )


def check_batch(value: Any, *, now_ms: int) -> Batch:
    """A parsed batch: the envelope must be valid (else `SchemaError`); events are checked one
    by one, the invalid ones listed in `rejected` with their reason. Two events with one `id`
    or one `seq` in a batch: the later ones are rejected."""
    if not isinstance(value, dict):
        raise SchemaError("the batch must be a JSON object")
    events = value.get("events")
    if not isinstance(events, list):
        raise SchemaError("'events' must be a list")
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise SchemaError(f"a batch holds at most {MAX_EVENTS_PER_BATCH} events")
    envelope = check_object({k: v for k, v in value.items() if k != "events"}, BATCH_FIELDS, "")
    if envelope["schema_version"] not in SUPPORTED_VERSIONS:
        raise SchemaError(
            f"schema_version {envelope['schema_version']} is not supported "
            f"(supported: {', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    good: list[Event] = []
    rejected: list[Rejected] = []
    ids: set[str] = set()
    seqs: set[int] = set()
    for index, item in enumerate(events):
        raw_id = item.get("id") if isinstance(item, dict) else None
        shown_id = raw_id if isinstance(raw_id, str) and _UUID.match(raw_id) else None
        try:
            event = check_event(item, now_ms=now_ms)
            if event.id in ids or event.seq in seqs:
                raise SchemaError("the batch holds another event with this id or seq")
        except SchemaError as exc:
            rejected.append(Rejected(index, shown_id, str(exc)))
            continue
        ids.add(event.id)
        seqs.add(event.seq)
        good.append(event)
    return Batch(
        schema_version=envelope["schema_version"],
        batch_id=envelope["batch_id"],
        install_id=envelope["install_id"],
        client_sent_at=envelope["client_sent_at"],
        app=envelope["app"],
        health=envelope["health"],
        events=tuple(good),
        rejected=tuple(rejected),
    )


def batch_json(
    *,
    batch_id: str,
    install_id: str,
    client_sent_at: int,
    app: Mapping[str, Any],
    health: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """A batch as the client sends it (the uploader serializes this with `json`)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "batch_id": batch_id,
        "install_id": install_id,
        "client_sent_at": client_sent_at,
        "app": dict(app),
        "health": dict(health),
        "events": [dict(e) for e in events],
    }


def check_registration(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SchemaError("the registration must be a JSON object")
    checked = check_object(value, REGISTER_FIELDS, "")
    if checked["schema_version"] not in SUPPORTED_VERSIONS:
        raise SchemaError(f"schema_version {checked['schema_version']} is not supported")
    return checked


# ---------------------------------------------------------------------------------------------
# The dictionary (docs/telemetry.md, the client's "what we send" view).


@dataclass(frozen=True, slots=True)
class Entry:
    where: str
    """`batch.app.version`, `event.msg_sent.result`..."""
    shape: str
    meaning: str
    why: str
    sensitivity: str
    retention: str


def _entries(prefix: str, fields: Sequence[Field]) -> list[Entry]:
    entries: list[Entry] = []
    for item in fields:
        where = f"{prefix}.{item.name}"
        entries.append(
            Entry(where, item.describe(), item.meaning, item.why, item.sensitivity, RETENTION_RAW)
        )
        if isinstance(item, ObjectField):
            entries.extend(_entries(where, item.fields))
    return entries


def dictionary() -> list[Entry]:
    """Every field that can leave the client, with its meaning, purpose, category and
    retention, in wire order."""
    entries = _entries("batch", BATCH_FIELDS)
    entries += _entries("event", COMMON_FIELDS)
    for kind in EVENT_TYPES.values():
        entries += _entries(f"event.{kind.name}", kind.fields)
    return entries


def all_fields() -> list[Field]:
    """Every field declaration, nested ones included (for the privacy test)."""
    found: list[Field] = []

    def walk(fields: Sequence[Field]) -> None:
        for item in fields:
            found.append(item)
            if isinstance(item, ObjectField):
                walk(item.fields)

    walk(BATCH_FIELDS)
    walk(REGISTER_FIELDS)
    walk(COMMON_FIELDS)
    for kind in EVENT_TYPES.values():
        walk(kind.fields)
    return found
