"""The "what we send" view as text and JSON (`chinwag telemetry show|status|export`): read
from the profile's telemetry tables with the same serializer the uploader uses, so what is
shown is byte for byte what leaves."""

from __future__ import annotations

import json
import time
from typing import Any

from chat.telemetry import identifiers, outbox, schema
from chat.telemetry.client.service import app_info
from chat.telemetry.settings import TelemetrySettings
from storage.store import Store


def snapshot(
    store: Store, settings: TelemetrySettings, *, now_ms: int | None = None
) -> dict[str, Any]:
    """Everything the view shows: settings, state, pending counts, sent batches (with their
    exact bodies), and the next batch exactly as it would leave."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    repo = store.telemetry_outbox
    state = repo.state()
    current = outbox.status(store)
    events = outbox.next_batch(store, outbox.Caps())
    next_batch = None
    if events:
        next_batch = outbox.batch_body(
            events,
            batch_id=identifiers.new_id(),
            install_id=current.install_id or identifiers.new_id(),
            now_ms=now_ms,
            app=app_info("relay"),
            current=current,
        )
    sent = repo.sent()
    return {
        "level": "off" if settings.forced_off else settings.level,
        "forced_off": settings.forced_off,
        "collector": settings.collector,
        "cohort": settings.cohort,
        "dry_run": str(settings.dry_run) if settings.dry_run else None,
        "schema_version": schema.SCHEMA_VERSION,
        "install_id": current.install_id,
        "paused": state.get("paused") == "1",
        "deletion_pending": "delete_request" in state,
        "queued_events": current.queued,
        "queued_bytes": current.queued_bytes,
        "oldest_pending_age_s": None
        if current.oldest_t is None
        else max(0, (now_ms - current.oldest_t) // 1000),
        "queued_by_type": repo.counts_by_type(),
        "dropped": current.dropped,
        "upload_failures": current.upload_failures,
        "next_seq": current.next_seq,
        "sent_batches": [
            {
                "batch_id": b.batch_id,
                "sent_at": b.sent_at,
                "status": b.status,
                "events": b.events,
                "accepted": b.accepted,
                "duplicate": b.duplicate,
                "rejected": b.rejected,
                "bytes": b.bytes,
                "body": b.body,
            }
            for b in sent
        ],
        "sent_bytes_total": sum(b.bytes for b in sent),
        "next_batch": next_batch,
    }


def status_text(view: dict[str, Any]) -> str:
    install = view["install_id"]
    lines = [
        f"level: {view['level']}" + (" (CHINWAG_TELEMETRY=off)" if view["forced_off"] else ""),
        f"collector: {view['collector'] or '-'}",
        f"cohort: {view['cohort'] or '-'}",
        f"dry run: {view['dry_run'] or 'no'}",
        f"install: {install[:8] if install else '-'}",
        f"schema version: {view['schema_version']}",
        f"paused: {'yes' if view['paused'] else 'no'}",
        f"deletion request pending: {'yes' if view['deletion_pending'] else 'no'}",
        f"queued: {view['queued_events']} events, {view['queued_bytes']} bytes",
        "oldest queued: "
        + (
            "-" if view["oldest_pending_age_s"] is None else f"{view['oldest_pending_age_s']} s ago"
        ),
        "dropped: " + (_counts(view["dropped"]) or "none"),
        f"upload failures: {view['upload_failures']}",
        f"sent: {len(view['sent_batches'])} recent batches, {view['sent_bytes_total']} bytes",
    ]
    return "\n".join(lines)


def show_text(view: dict[str, Any]) -> str:
    parts = [
        status_text(view),
        "",
        "queued by type: " + (_counts(view["queued_by_type"]) or "none"),
    ]
    for batch in view["sent_batches"]:
        parts.append(
            f"batch {batch['batch_id'][:8]} {batch['status']}: {batch['events']} events, "
            f"{batch['bytes']} bytes (accepted {batch['accepted']}, duplicate "
            f"{batch['duplicate']}, rejected {batch['rejected']})"
        )
    if view["next_batch"] is not None:
        parts += ["", "next batch, exactly as it would leave (before gzip):", view["next_batch"]]
    return "\n".join(parts)


def dictionary_text() -> str:
    lines = []
    for entry in schema.dictionary():
        lines.append(f"{entry.where}: {entry.shape}")
        lines.append(
            f"    {entry.meaning} Why: {entry.why or '-'}. {entry.sensitivity}; {entry.retention}"
        )
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()) if n)


def export_json(view: dict[str, Any], store: Store) -> str:
    """The view and every queued event's exact JSON."""
    queued = [json.loads(e.body) for e in store.telemetry_outbox.oldest(10**6)]
    return json.dumps({**view, "queued": queued}, indent=2)
