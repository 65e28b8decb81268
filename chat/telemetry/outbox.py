"""The local outbox's rules, run in the profile DB's worker thread (storage/repositories/
telemetry_outbox.py stores): events get their sequence number and their exact JSON when
persisted; the caps purge the oldest first and count every drop by type; batches are cut from
the oldest events; an answered batch leaves the outbox.

State keys (table `telemetry_state`): `install_id`, `token` (from the collector's
registration), `next_seq`, `dropped` (JSON totals by type since opt-in), `upload_failures`,
`open_session` (JSON: the running session, for `session_end{unclean}` after a crash),
`delete_request` (JSON: an opt-out's install id and token, kept until the collector
acknowledged it), `paused`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chat.telemetry import identifiers, schema
from chat.telemetry.recorder import Recorded
from storage.repositories.telemetry_outbox import QueuedEvent
from storage.store import Store

DAY_MS = 86_400_000
KEPT_LONGEST = ("heartbeat", "session_start", "session_end")
"""Over a cap these go last: heartbeats carry the totals that reconcile dropped per-message
events, sessions the presence the report's denominators need."""


@dataclass(frozen=True, slots=True)
class Caps:
    max_events: int = 20_000
    max_bytes: int = 10 * 1024 * 1024
    max_age_ms: int = 14 * DAY_MS
    batch_events: int = schema.MAX_EVENTS_PER_BATCH
    batch_bytes: int = 512 * 1024


@dataclass(frozen=True, slots=True)
class Status:
    """What the "what we send" view and the batch's `health` show."""

    queued: int
    queued_bytes: int
    oldest_t: int | None
    dropped: dict[str, int]
    upload_failures: int
    install_id: str | None
    next_seq: int


def event_json(recorded: Recorded, *, seq: int, session_id: str) -> dict[str, Any]:
    return {
        "id": identifiers.new_id(),
        "seq": seq,
        "sid": recorded.sid or session_id,
        "type": recorded.type,
        "t": recorded.t,
        "up_ms": recorded.up_ms,
        "net": recorded.net,
        **recorded.fields,
    }


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def persist(
    store: Store,
    recorded: Sequence[Recorded],
    dropped: Mapping[str, int],
    *,
    session_id: str,
    now_ms: int,
    caps: Caps,
    strict: bool = False,
) -> Counter[str]:
    """Store the recorded events (each checked against the schema: a violation is counted as
    `schema_violation`, or raised when `strict`), add the memory drops to the totals, then
    enforce the caps. Returns the drops the caps made."""
    repo = store.telemetry_outbox
    state = repo.state()
    next_seq = int(state.get("next_seq", "0"))
    totals: Counter[str] = Counter(json.loads(state.get("dropped", "{}")))
    totals.update(dropped)
    rows: list[QueuedEvent] = []
    for item in recorded:
        event = event_json(item, seq=next_seq, session_id=session_id)
        try:
            schema.check_event(event, now_ms=now_ms)
        except schema.SchemaError:
            if strict:
                raise
            totals["schema_violation"] += 1
            continue
        body = dumps(event)
        rows.append(QueuedEvent(next_seq, event["id"], item.type, item.t, body, len(body)))
        next_seq += 1
    repo.append(rows, {"next_seq": str(next_seq), "dropped": dumps(dict(totals))})
    return enforce_caps(store, caps, now_ms)


def enforce_caps(store: Store, caps: Caps, now_ms: int) -> Counter[str]:
    """Oldest first (per-message events before heartbeats and sessions), until the outbox is
    within every cap; each purged event is counted in `dropped` by its type (its seq stays
    unused, so the collector sees the gap too)."""
    repo = store.telemetry_outbox
    count, size, oldest = repo.totals()
    too_old = oldest is not None and oldest < now_ms - caps.max_age_ms
    if count <= caps.max_events and size <= caps.max_bytes and not too_old:
        return Counter()
    purged: Counter[str] = Counter()
    seqs: list[int] = []

    def purge(seq: int, event_type: str, length: int) -> None:
        nonlocal count, size
        seqs.append(seq)
        purged[event_type] += 1
        count -= 1
        size -= length

    if too_old:
        for row in repo.sizes_before(now_ms - caps.max_age_ms):
            purge(*row)
    gone = set(seqs)
    # Per-message events go first: the heartbeats' totals keep what they counted visible.
    for keep in (KEPT_LONGEST, ()):
        last = -1
        while count > caps.max_events or size > caps.max_bytes:
            chunk = repo.sizes(max(100, count - caps.max_events), last, keep=keep)
            if not chunk:
                break
            for seq, event_type, length in chunk:
                last = seq
                if seq in gone:
                    continue
                if count <= caps.max_events and size <= caps.max_bytes:
                    break
                purge(seq, event_type, length)
                gone.add(seq)
    state = repo.state()
    totals: Counter[str] = Counter(json.loads(state.get("dropped", "{}")))
    totals.update(purged)
    repo.delete_with_state(seqs, {"dropped": dumps(dict(totals))})
    return purged


def status(store: Store) -> Status:
    repo = store.telemetry_outbox
    state = repo.state()
    count, size, oldest = repo.totals()
    return Status(
        queued=count,
        queued_bytes=size,
        oldest_t=oldest,
        dropped={k: int(v) for k, v in json.loads(state.get("dropped", "{}")).items()},
        upload_failures=int(state.get("upload_failures", "0")),
        install_id=state.get("install_id"),
        next_seq=int(state.get("next_seq", "0")),
    )


def next_batch(store: Store, caps: Caps) -> list[QueuedEvent]:
    """The oldest events, at most `batch_events` of them and `batch_bytes` of JSON."""
    chosen: list[QueuedEvent] = []
    size = 0
    for event in store.telemetry_outbox.oldest(caps.batch_events):
        if chosen and size + event.bytes > caps.batch_bytes:
            break
        chosen.append(event)
        size += event.bytes
    return chosen


def batch_body(
    events: Sequence[QueuedEvent],
    *,
    batch_id: str,
    install_id: str,
    now_ms: int,
    app: Mapping[str, Any],
    current: Status,
) -> str:
    """The batch exactly as it leaves (before gzip): the events' stored JSON, verbatim."""
    oldest_age = 0 if current.oldest_t is None else max(0, (now_ms - current.oldest_t) // 1000)
    envelope = schema.batch_json(
        batch_id=batch_id,
        install_id=install_id,
        client_sent_at=now_ms,
        app=app,
        health={
            "outbox_len": min(current.queued, 10**7),
            "oldest_pending_age_s": min(oldest_age, 10**8),
            "dropped_total": {
                k: v for k, v in current.dropped.items() if k in _DROP_KEYS and v > 0
            },
            "upload_failures_total": current.upload_failures,
        },
        events=[],
    )
    text = dumps(envelope)
    # The events' own bytes go in as stored, so the view shows what leaves, byte for byte.
    assert text.endswith('"events":[]}')
    return text[: -len("]}")] + ",".join(e.body for e in events) + "]}"


_DROP_KEYS = frozenset((*schema.EVENT_TYPES, "schema_violation"))


def uploaded(store: Store, seqs: Sequence[int]) -> None:
    """The collector answered the batch (accepted, duplicate or rejected: each is final)."""
    store.telemetry_outbox.delete(seqs)


def upload_failed(store: Store) -> int:
    repo = store.telemetry_outbox
    failures = int(repo.state().get("upload_failures", "0")) + 1
    repo.set_state({"upload_failures": str(failures)})
    return failures
