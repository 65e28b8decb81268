"""The collector's storage operations, synchronous (the app runs them in one writer thread):
registration, idempotent ingestion, deletion on request, and retention.

Idempotency: an event is identified by its `id` and, within its install, by its `seq`. An
event whose id is already stored is a duplicate (a retried upload) and changes nothing; an
event that reuses a stored seq under another id is rejected. Projections are written only for
events stored now, in the same transaction, so a replay can never count twice.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Table, delete, func, insert, select, update

from chat.telemetry import identifiers
from chat.telemetry.collector import tables
from chat.telemetry.schema import Batch, Event, Rejected

DAY_MS = 86_400_000
RAW_RETENTION_DAYS = 30
DERIVED_RETENTION_DAYS = 90


@dataclass(frozen=True, slots=True)
class Install:
    install_id: str
    cohort: str


class OverCap(Exception):
    """The batch holds more new events than the install may still store today."""


@dataclass
class IngestResult:
    accepted: int = 0
    duplicate: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": [r.to_json() for r in self.rejected],
        }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def day_of(ms: int) -> int:
    return ms // DAY_MS


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, cohort: str, now_ms: int) -> tuple[str, str]:
        install_id = identifiers.new_id()
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as db:
            db.execute(
                insert(tables.installs).values(
                    install_id=install_id,
                    token_sha256=token_hash(token),
                    cohort=cohort,
                    created_day=day_of(now_ms),
                )
            )
        return install_id, token

    def install_for(self, token: str) -> Install | None:
        query = select(tables.installs.c.install_id, tables.installs.c.cohort).where(
            tables.installs.c.token_sha256 == token_hash(token)
        )
        with self.engine.connect() as db:
            row = db.execute(query).first()
        return None if row is None else Install(row.install_id, row.cohort)

    def events_since(self, install_id: str, since_ms: int) -> int:
        """Events of this install stored since `since_ms` (seeds the daily cap)."""
        query = select(func.count()).where(
            tables.events.c.install_id == install_id, tables.events.c.received_at >= since_ms
        )
        with self.engine.connect() as db:
            return int(db.execute(query).scalar_one())

    def ingest(
        self, install: Install, batch: Batch, received_at: int, *, max_new: int | None = None
    ) -> IngestResult:
        """Stores the batch's new events; `OverCap` (and nothing stored) when there are more
        than `max_new` of them. Duplicates never count against it."""
        result = IngestResult(rejected=list(batch.rejected))
        by_id = {e.id: e for e in batch.events}
        with self.engine.begin() as db:
            known_ids = _existing(db, tables.events.c.event_id, list(by_id))
            seqs = [e.seq for e in batch.events]
            taken = _existing(
                db, tables.events.c.seq, seqs, tables.events.c.install_id == install.install_id
            )
            fresh: list[Event] = []
            for index, item in enumerate(batch.events):
                if item.id in known_ids:
                    result.duplicate += 1
                elif item.seq in taken:
                    result.rejected.append(
                        Rejected(index, item.id, "this seq is already used by another event")
                    )
                else:
                    fresh.append(item)
            if max_new is not None and len(fresh) > max_new:
                raise OverCap()
            version = str(batch.app["version"])
            if fresh:
                db.execute(
                    insert(tables.events),
                    [_event_row(install.install_id, e, received_at, version) for e in fresh],
                )
                for table, rows in _projection_rows(install.install_id, fresh, version).items():
                    db.execute(insert(table), rows)
            result.accepted = len(fresh)
            replay = db.execute(
                select(tables.batches.c.batch_id).where(tables.batches.c.batch_id == batch.batch_id)
            ).first()
            if replay is None:
                db.execute(
                    insert(tables.batches).values(**_batch_row(install, batch, received_at, result))
                )
            db.execute(
                update(tables.installs)
                .where(tables.installs.c.install_id == install.install_id)
                .values(
                    last_seen_day=day_of(received_at),
                    last_app_version=version,
                    platform=batch.app["platform"],
                    mode=batch.app["mode"],
                )
            )
        return result

    def delete_install(self, install_id: str) -> dict[str, int]:
        """Every row of this install, in every table; its token stops working."""
        deleted: dict[str, int] = {}
        with self.engine.begin() as db:
            for table in tables.PER_INSTALL:
                outcome = db.execute(delete(table).where(table.c.install_id == install_id))
                deleted[table.name] = outcome.rowcount
        return deleted

    def purge(
        self,
        now_ms: int,
        *,
        raw_days: int = RAW_RETENTION_DAYS,
        derived_days: int = DERIVED_RETENTION_DAYS,
    ) -> dict[str, int]:
        """The retention job: raw events and batches older than `raw_days` (by arrival),
        projections older than `derived_days` (by event time). Returns rows deleted per table."""
        deleted: dict[str, int] = {}
        raw_limit = now_ms - raw_days * DAY_MS
        derived_limit = now_ms - derived_days * DAY_MS
        with self.engine.begin() as db:
            for table in tables.RAW_TABLES:
                outcome = db.execute(delete(table).where(table.c.received_at < raw_limit))
                deleted[table.name] = outcome.rowcount
            for table in tables.PROJECTIONS:
                outcome = db.execute(delete(table).where(table.c.t < derived_limit))
                deleted[table.name] = outcome.rowcount
        return deleted

    def count_installs(self) -> int:
        with self.engine.connect() as db:
            return int(db.execute(select(func.count()).select_from(tables.installs)).scalar_one())

    def ping(self) -> None:
        with self.engine.connect() as db:
            db.execute(select(1))


def _existing(db: Any, column: Any, values: list[Any], *where: Any) -> set[Any]:
    if not values:
        return set()
    query = select(column).where(column.in_(values), *where)
    return {row[0] for row in db.execute(query)}


def _event_row(install_id: str, item: Event, received_at: int, version: str) -> dict[str, Any]:
    return {
        "event_id": item.id,
        "install_id": install_id,
        "seq": item.seq,
        "session_id": item.sid,
        "type": item.type,
        "t": item.t,
        "received_at": received_at,
        "app_version": version,
        "body": json.dumps(item.to_json(), separators=(",", ":")),
    }


def _batch_row(
    install: Install, batch: Batch, received_at: int, result: IngestResult
) -> dict[str, Any]:
    seqs = [e.seq for e in batch.events]
    return {
        "batch_id": batch.batch_id,
        "install_id": install.install_id,
        "received_at": received_at,
        "client_sent_at": batch.client_sent_at,
        "skew_ms": received_at - batch.client_sent_at,
        "n_events": len(batch.events) + len(batch.rejected),
        "n_accepted": result.accepted,
        "n_duplicate": result.duplicate,
        "n_rejected": len(result.rejected),
        "outbox_len": batch.health["outbox_len"],
        "oldest_pending_age_s": batch.health["oldest_pending_age_s"],
        "dropped_json": json.dumps(batch.health["dropped_total"], sort_keys=True),
        "upload_failures_total": batch.health["upload_failures_total"],
        "first_seq": min(seqs) if seqs else None,
        "last_seq": max(seqs) if seqs else None,
        "app_version": batch.app["version"],
        "mode": batch.app["mode"],
    }


def _projection_rows(
    install_id: str, fresh: Iterable[Event], version: str
) -> Mapping[Table, list[dict[str, Any]]]:
    rows: dict[Table, list[dict[str, Any]]] = {}
    for item in fresh:
        found = _project(item, version)
        if found is not None:
            table, values = found
            rows.setdefault(table, []).append(
                {"event_id": item.id, "install_id": install_id, "t": item.t, **values}
            )
    return rows


def _project(item: Event, version: str) -> tuple[Table, dict[str, Any]] | None:
    f = item.fields
    if item.type in ("session_start", "session_end"):
        return tables.sessions, {
            "session_id": item.sid,
            "kind": item.type.removeprefix("session_"),
            "reason": f["reason"],
            "mode": f.get("mode"),
            "duration_s": f.get("duration_s"),
        }
    if item.type == "heartbeat":
        msgs = f.get("msgs", {})
        return tables.heartbeats, {
            "session_id": item.sid,
            "online_s": f["online_s"],
            "offline_s": f["offline_s"],
            "msgs_sent": msgs.get("sent", 0),
            "msgs_recv": msgs.get("recv", 0),
            "msgs_dup": msgs.get("dup", 0),
            "msgs_gaps": msgs.get("gaps", 0),
            "bw_json": json.dumps({"bw": f.get("bw", {}), "bw_kind": f.get("bw_kind", {})}),
        }
    if item.type in ("conv_join", "conv_leave"):
        return tables.memberships, {
            "conv_ref": f["conv_ref"],
            "action": item.type.removeprefix("conv_"),
            "conv_kind": f["conv_kind"],
            "size_bucket": f["size_bucket"],
        }
    if item.type == "msg_sent":
        return tables.msg_sent, {
            "msg_ref": f["msg_ref"],
            "conv_ref": f["conv_ref"],
            "path": f["path"],
            "result": f["result"],
            "attempt": f["attempt"],
            "app_version": version,
        }
    if item.type == "msg_confirm":
        return tables.msg_confirm, {
            "msg_ref": f["msg_ref"],
            "kind": f["kind"],
            "delay_ms": f["delay_ms"],
        }
    if item.type == "msg_recv":
        return tables.msg_recv, {
            "msg_ref": f["msg_ref"],
            "conv_ref": f["conv_ref"],
            "via": f["via"],
            "lat_ms": f["lat_ms"],
            "decrypt_ok": f["decrypt_ok"],
        }
    if item.type == "gap_detected":
        return tables.gaps, {
            "conv_ref": f["conv_ref"],
            "kind": "detected",
            "how": f["method"],
            "n": f["n_missing"],
            "span_ms": f["window_s"] * 1000,
        }
    if item.type == "gap_recovered":
        return tables.gaps, {
            "conv_ref": f["conv_ref"],
            "kind": "recovered",
            "how": f["via"],
            "n": f["n"],
            "span_ms": f["after_ms"],
        }
    return None  # error events: raw only
