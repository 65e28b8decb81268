"""The reliability report (docs/telemetry.md §Report), computed from the collector's tables.

For every message a sender reported as accepted (its first accepted attempt) and every install
that was a member of its conversation at that moment (the expected receivers, sender aside),
the pair (message, receiver) is:

- delivered in real time / within a minute / eventually: the receiver reported it within
  10 s / 60 s / 24 h of its sending (clock-corrected);
- lost: not delivered within 24 h, and the receiver is *covered*: it uploaded an event from at
  least 24 h after the message was sent (it was alive later and had time to sync);
- unknown otherwise (it never came back, or has not uploaded yet). Never dropped.

So a message that every receiver missed counts as lost (a receiver-relative index cannot see
it), and a receiver who never returns counts as unknown, not lost. Every rate comes with its
n and its coverage; below 80 % coverage it is marked provisional.

Clock correction: per install, the smallest `received_at - client_sent_at` over its batches
is its clock offset (network delay only adds to it); applied when it exceeds 2 s.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, case, func, select

from chat.telemetry.collector import tables

D_RT_MS = 10_000
D_60_MS = 60_000
D_EV_MS = 86_400_000
PROVISIONAL_BELOW = 0.8
SKEW_TOLERANCE_MS = 2_000
LATE_MS = 3_600_000
DIMENSIONS = ("day", "cohort", "version", "conv_kind", "mode")


def rate(numerator: int, n: int, *, total: int | None = None) -> dict[str, Any]:
    """A rate with its n; with `total`, also its coverage (n / total) and whether it is
    provisional (coverage below 80 %)."""
    value = numerator / n if n else None
    out: dict[str, Any] = {"value": value, "n": n}
    if total is not None:
        coverage = n / total if total else None
        out["coverage"] = coverage
        out["provisional"] = coverage is None or coverage < PROVISIONAL_BELOW
    return out


def percentile(sorted_values: list[int], p: float) -> int | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


@dataclass
class Tally:
    pairs: int = 0
    delivered_rt: int = 0
    delivered_60: int = 0
    delivered_ev: int = 0
    lost: int = 0
    unknown: int = 0
    online_pairs: int = 0
    online_rt: int = 0
    latencies: list[int] = field(default_factory=list)
    attempted: int = 0
    sent: int = 0
    store_seen: int = 0
    store_timeout: int = 0
    e2e_ack: int = 0
    e2e_timeout: int = 0
    received: int = 0
    missing: int = 0
    recovered: int = 0

    def summary(self) -> dict[str, Any]:
        known = self.delivered_ev + self.lost
        latencies = sorted(self.latencies)
        store_n = self.store_seen + self.store_timeout
        e2e_n = self.e2e_ack + self.e2e_timeout
        return {
            "pairs": self.pairs,
            "delivered_rt": self.delivered_rt,
            "delivered_60s": self.delivered_60,
            "delivered": self.delivered_ev,
            "lost": self.lost,
            "unknown": self.unknown,
            "eventual_delivery_known": rate(self.delivered_ev, known, total=self.pairs),
            "eventual_delivery_lower_bound": rate(self.delivered_ev, self.pairs),
            "realtime_delivery_online": rate(self.online_rt, self.online_pairs, total=self.pairs),
            "latency_ms": {
                "p50": percentile(latencies, 50),
                "p90": percentile(latencies, 90),
                "p99": percentile(latencies, 99),
                "n": len(latencies),
            },
            "sent": self.sent,
            "send_accepted": rate(self.sent, self.attempted),
            "send_confirmation": rate(self.store_seen, store_n, total=self.sent),
            "e2e_confirmation": rate(self.e2e_ack, e2e_n, total=self.sent),
            "gap_rate": rate(self.missing, self.received + self.missing),
            "recovery_rate": rate(min(self.recovered, self.missing), self.missing),
        }


class Tallies:
    """One tally overall and one per value of each dimension."""

    def __init__(self) -> None:
        self.overall = Tally()
        self.by: dict[str, dict[str, Tally]] = {d: defaultdict(Tally) for d in DIMENSIONS}

    def each(self, dims: Mapping[str, str]) -> Iterable[Tally]:
        yield self.overall
        for name in DIMENSIONS:
            yield self.by[name][dims[name]]


@dataclass(frozen=True, slots=True)
class InstallInfo:
    cohort: str
    mode: str
    version: str
    offset_ms: int
    last_t: int | None


def day_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def compute_report(engine: Engine, *, start_ms: int, end_ms: int, now_ms: int) -> dict[str, Any]:
    """The report for messages sent in [start_ms, end_ms), as of `now_ms`."""
    with engine.connect() as db:
        installs = _installs(db)
        members = _memberships(db, installs)
        conv_kinds = {conv: kind for (conv, _), (kind, _) in members.items()}
        by_conv: dict[str, list[tuple[str, list[tuple[int, int]]]]] = defaultdict(list)
        for (conv, member), (_, intervals) in members.items():
            by_conv[conv].append((member, intervals))
        tallies = Tallies()
        sent = _sent(db, installs, start_ms, end_ms)
        receipts, active = _receipts(db, installs, start_ms)
        online = _online_windows(db, installs, start_ms)
        confirmations = _confirmations(db, start_ms)
        relative_hits = relative_pairs = 0
        for (msg_ref, sender), (t_sent, conv, version, accepted) in sent.items():
            info = installs.get(sender)
            if info is None:
                continue
            base = {
                "day": day_text(t_sent),
                "cohort": info.cohort,
                "version": version,
                "conv_kind": conv_kinds.get(conv, "unknown"),
            }
            for tally in tallies.each({**base, "mode": info.mode}):
                tally.attempted += 1
                if accepted:
                    tally.sent += 1
                    _add_confirmation(tally, confirmations.get((msg_ref, sender), set()))
            if not accepted:
                continue  # no receiver can be expected to get it
            expected = [
                r
                for r, intervals in by_conv.get(conv, ())
                if r != sender and r in installs and _covers(intervals, t_sent)
            ]
            got = [r for r in expected if (msg_ref, r) in receipts]
            if got:
                seen = [r for r in expected if r in active.get(conv, ())]
                relative_pairs += len(seen)
                relative_hits += sum(1 for r in seen if (msg_ref, r) in receipts)
            for receiver in expected:
                rinfo = installs[receiver]
                t_recv = receipts.get((msg_ref, receiver))
                dims = {**base, "mode": rinfo.mode}
                is_online = _online_at(online.get(receiver, []), t_sent)
                for tally in tallies.each(dims):
                    _classify(tally, t_sent, t_recv, rinfo, is_online)
        _receiver_side(db, installs, conv_kinds, receipts, tallies, start_ms, end_ms)
        health = _telemetry_health(db, installs)
    return {
        "window": {"from": start_ms, "to": end_ms, "computed_at": now_ms},
        "definitions": {
            "realtime_ms": D_RT_MS,
            "eventual_ms": D_EV_MS,
            "provisional_below_coverage": PROVISIONAL_BELOW,
        },
        "overall": tallies.overall.summary(),
        "by": {
            name: {key: tallies.by[name][key].summary() for key in sorted(tallies.by[name])}
            for name in DIMENSIONS
        },
        "receiver_relative_index_biased": rate(relative_hits, relative_pairs),
        "telemetry": health,
    }


def _classify(
    tally: Tally,
    t_sent: int,
    t_recv: int | None,
    receiver: InstallInfo,
    is_online: bool | None,
) -> None:
    tally.pairs += 1
    delay = None if t_recv is None else max(0, t_recv - t_sent)
    if delay is not None and delay <= D_EV_MS:
        tally.delivered_ev += 1
        tally.latencies.append(delay)
        tally.delivered_60 += delay <= D_60_MS
        tally.delivered_rt += delay <= D_RT_MS
    elif receiver.last_t is not None and receiver.last_t >= t_sent + D_EV_MS:
        tally.lost += 1
    else:
        tally.unknown += 1
    if is_online:
        tally.online_pairs += 1
        tally.online_rt += delay is not None and delay <= D_RT_MS


def _add_confirmation(tally: Tally, kinds: set[str]) -> None:
    if "store_seen" in kinds:
        tally.store_seen += 1
    elif "store_timeout" in kinds:
        tally.store_timeout += 1
    if "e2e_ack" in kinds:
        tally.e2e_ack += 1
    elif "e2e_timeout" in kinds:
        tally.e2e_timeout += 1


def _installs(db: Any) -> dict[str, InstallInfo]:
    offsets = dict(
        db.execute(
            select(tables.batches.c.install_id, func.min(tables.batches.c.skew_ms)).group_by(
                tables.batches.c.install_id
            )
        ).all()
    )
    last = dict(
        db.execute(
            select(tables.events.c.install_id, func.max(tables.events.c.t)).group_by(
                tables.events.c.install_id
            )
        ).all()
    )
    found: dict[str, InstallInfo] = {}
    for row in db.execute(select(tables.installs)):
        skew = offsets.get(row.install_id) or 0
        offset = skew if abs(skew) > SKEW_TOLERANCE_MS else 0
        last_t = last.get(row.install_id)
        found[row.install_id] = InstallInfo(
            cohort=row.cohort,
            mode=row.mode or "unknown",
            version=row.last_app_version or "unknown",
            offset_ms=offset,
            last_t=None if last_t is None else last_t + offset,
        )
    return found


def _corrected(installs: Mapping[str, InstallInfo], install_id: str, t: int) -> int:
    info = installs.get(install_id)
    return t + (info.offset_ms if info else 0)


def _memberships(
    db: Any, installs: Mapping[str, InstallInfo]
) -> dict[tuple[str, str], tuple[str, list[tuple[int, int]]]]:
    """(conv_ref, install) → (conv_kind, membership intervals): from a join until the next
    leave (joins repeat at each session start)."""
    m = tables.memberships.c
    rows = db.execute(
        select(m.conv_ref, m.install_id, m.t.label("at"), m.action, m.conv_kind).order_by(m.t)
    ).all()
    out: dict[tuple[str, str], tuple[str, list[tuple[int, int]]]] = {}
    open_since: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.conv_ref, row.install_id)
        t = _corrected(installs, row.install_id, row.at)
        _, intervals = out.setdefault(key, (row.conv_kind, []))
        if row.action == "join":
            open_since.setdefault(key, t)
        elif key in open_since:
            intervals.append((open_since.pop(key), t))
    for key, since in open_since.items():
        out[key][1].append((since, 2**62))
    return out


def _covers(intervals: list[tuple[int, int]], t: int) -> bool:
    return any(start <= t < end for start, end in intervals)


def _sent(
    db: Any, installs: Mapping[str, InstallInfo], start_ms: int, end_ms: int
) -> dict[tuple[str, str], tuple[int, str, str, bool]]:
    """(msg_ref, sender) → (sending time, conv_ref, version, accepted): the sending time is
    the first accepted attempt's (corrected), or the first attempt's if none was accepted."""
    s = tables.msg_sent.c
    rows = db.execute(
        select(s.msg_ref, s.install_id, s.t.label("at"), s.conv_ref, s.app_version, s.result).where(
            s.t >= start_ms - D_EV_MS, s.t < end_ms + D_EV_MS
        )
    )
    out: dict[tuple[str, str], tuple[int, str, str, bool]] = {}
    for row in rows:
        t = _corrected(installs, row.install_id, row.at)
        key = (row.msg_ref, row.install_id)
        accepted = row.result == "accepted"
        known = out.get(key)
        if known is None or (accepted, -t) > (known[3], -known[0]):
            out[key] = (t, row.conv_ref, row.app_version, accepted)
    return {k: v for k, v in out.items() if start_ms <= v[0] < end_ms}


def _receipts(
    db: Any, installs: Mapping[str, InstallInfo], start_ms: int
) -> tuple[dict[tuple[str, str], int], dict[str, set[str]]]:
    """(msg_ref, receiver) → earliest corrected receipt time; and per conversation the
    receivers that reported any receipt (for the receiver-relative index)."""
    r = tables.msg_recv.c
    out: dict[tuple[str, str], int] = {}
    active: dict[str, set[str]] = defaultdict(set)
    query = select(r.msg_ref, r.install_id, r.conv_ref, r.t.label("at")).where(
        r.t >= start_ms - LATE_MS
    )
    for row in db.execute(query):
        t = _corrected(installs, row.install_id, row.at)
        key = (row.msg_ref, row.install_id)
        if key not in out or t < out[key]:
            out[key] = t
        active[row.conv_ref].add(row.install_id)
    return out, active


def _online_windows(
    db: Any, installs: Mapping[str, InstallInfo], start_ms: int
) -> dict[str, list[tuple[int, int, bool]]]:
    """Per install, its heartbeats as (period start, period end, online throughout)."""
    h = tables.heartbeats.c
    out: dict[str, list[tuple[int, int, bool]]] = defaultdict(list)
    rows = db.execute(
        select(h.install_id, h.t.label("at"), h.online_s, h.offline_s)
        .where(h.t >= start_ms - LATE_MS)
        .order_by(h.t)
    )
    for row in rows:
        end = _corrected(installs, row.install_id, row.at)
        begin = end - (row.online_s + row.offline_s) * 1000
        out[row.install_id].append((begin, end, row.offline_s == 0))
    return out


def _online_at(windows: list[tuple[int, int, bool]], t: int) -> bool | None:
    """Online at `t` per the first heartbeat whose period covers it (heartbeats are sorted by
    their end); None when no heartbeat covers it."""
    index = bisect_left(windows, t, key=lambda window: window[1])
    if index < len(windows) and windows[index][0] <= t:
        return windows[index][2]
    return None


def _confirmations(db: Any, start_ms: int) -> dict[tuple[str, str], set[str]]:
    c = tables.msg_confirm.c
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in db.execute(select(c.msg_ref, c.install_id, c.kind).where(c.t >= start_ms)):
        out[(row.msg_ref, row.install_id)].add(row.kind)
    return out


def _receiver_side(
    db: Any,
    installs: Mapping[str, InstallInfo],
    conv_kinds: Mapping[str, str],
    receipts: Mapping[tuple[str, str], int],
    tallies: Tallies,
    start_ms: int,
    end_ms: int,
) -> None:
    """Gap and recovery rates, attributed to the receiver (its cohort, version and mode)."""
    r = tables.msg_recv.c
    rows = db.execute(
        select(r.install_id, r.conv_ref, r.t.label("at")).where(r.t >= start_ms, r.t < end_ms)
    ).all()
    for row in rows:
        for tally in tallies.each(_receiver_dims(installs, conv_kinds, row)):
            tally.received += 1
    g = tables.gaps.c
    for row in db.execute(
        select(g.install_id, g.conv_ref, g.t.label("at"), g.kind, g.n).where(
            g.t >= start_ms, g.t < end_ms
        )
    ):
        for tally in tallies.each(_receiver_dims(installs, conv_kinds, row)):
            if row.kind == "detected":
                tally.missing += row.n
            else:
                tally.recovered += row.n


def _receiver_dims(
    installs: Mapping[str, InstallInfo], conv_kinds: Mapping[str, str], row: Any
) -> dict[str, str]:
    info = installs.get(row.install_id)
    return {
        "day": day_text(row.at),
        "cohort": info.cohort if info else "unknown",
        "version": info.version if info else "unknown",
        "conv_kind": conv_kinds.get(row.conv_ref, "unknown"),
        "mode": info.mode if info else "unknown",
    }


def _telemetry_health(db: Any, installs: Mapping[str, InstallInfo]) -> dict[str, Any]:
    """Telemetry's own loss: sequence gaps, drops the clients reported, late uploads, and
    the reconciliation of per-message events with heartbeat totals."""
    e = tables.events.c
    late = case((e.received_at - e.t > LATE_MS, 1), else_=0)
    seq_missing = events_total = late_total = 0
    for row in db.execute(
        select(
            e.install_id, func.count(), func.min(e.seq), func.max(e.seq), func.sum(late)
        ).group_by(e.install_id)
    ):
        count, low, high, late_n = row[1], row[2], row[3], row[4]
        events_total += count
        late_total += int(late_n or 0)
        seq_missing += (high - low + 1) - count
    dropped: dict[str, int] = defaultdict(int)
    b = tables.batches.c
    latest = (
        select(b.install_id, func.max(b.received_at).label("at")).group_by(b.install_id).subquery()
    )
    for row in db.execute(
        select(b.dropped_json).join(
            latest, (b.install_id == latest.c.install_id) & (b.received_at == latest.c.at)
        )
    ):
        for kind, n in json.loads(row.dropped_json).items():
            dropped[kind] += n
    h = tables.heartbeats.c
    hb = db.execute(
        select(
            func.coalesce(func.sum(h.msgs_sent), 0),
            func.coalesce(func.sum(h.msgs_recv), 0),
            func.coalesce(func.sum(h.online_s), 0),
            func.coalesce(func.sum(h.offline_s), 0),
        )
    ).one()
    s = tables.msg_sent.c
    sent_events = db.execute(
        select(func.count()).select_from(
            select(s.msg_ref, s.install_id).group_by(s.msg_ref, s.install_id).subquery()
        )
    ).scalar_one()
    recv_events = db.execute(select(func.count()).select_from(tables.msg_recv)).scalar_one()
    time_total = int(hb[2]) + int(hb[3])
    return {
        "installs": len(installs),
        "events": events_total,
        "seq_missing": seq_missing,
        "seq_loss": rate(seq_missing, events_total + seq_missing),
        "client_dropped": dict(sorted(dropped.items())),
        "late_share": rate(late_total, events_total),
        "offline_share": rate(int(hb[3]), time_total),
        "reconciliation": {
            kind: {
                "heartbeat_total": int(total),
                "events": int(events),
                "missing_events": int(total) - int(events),
                "reported_dropped": dropped.get(f"msg_{kind}", 0),
                "reconciled": int(total) - int(events) == dropped.get(f"msg_{kind}", 0),
            }
            for kind, total, events in (
                ("sent", hb[0], sent_events),
                ("recv", hb[1], recv_events),
            )
        },
    }
