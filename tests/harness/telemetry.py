"""Telemetry events and batches as the client sends them (chat.telemetry.schema), for the
collector and report tests: one `FakeInstall` per simulated install, with its own session,
sequence numbers and clock."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from chat.telemetry import identifiers, schema

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def app(mode: str = "relay", version: str = "0.1.0") -> dict[str, Any]:
    return {
        "version": version,
        "platform": "linux",
        "python": "3.11",
        "stack": "py-libp2p-0.8.1",
        "mode": mode,
    }


def conversation(secret: bytes) -> tuple[bytes, str]:
    key = identifiers.telemetry_key(secret)
    return key, identifiers.conv_ref(key)


@dataclass
class FakeInstall:
    """One install's telemetry: events get the next seq and this session's id."""

    install_id: str
    token: str
    mode: str = "relay"
    version: str = "0.1.0"
    session_id: str = field(default_factory=identifiers.new_id)
    next_seq: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)
    """Events a test prepared for the next upload."""

    def event(
        self, event_type: str, t: int, /, net: str = "online", **fields: Any
    ) -> dict[str, Any]:
        event = {
            "id": identifiers.new_id(),
            "seq": self.next_seq,
            "sid": self.session_id,
            "type": event_type,
            "t": t,
            "up_ms": 1000,
            "net": net,
            **fields,
        }
        self.next_seq += 1
        return event

    def skip(self, kind: str, n: int = 1) -> None:
        """Events the client dropped (queue full): their seqs are never used, the drop counted."""
        self.dropped[kind] = self.dropped.get(kind, 0) + n

    def start(self, t: int) -> dict[str, Any]:
        return self.event("session_start", t, mode=self.mode, reason="launch")

    def join(
        self, t: int, conv_ref: str, kind: str = "group", size: str = "3-10"
    ) -> dict[str, Any]:
        return self.event("conv_join", t, conv_ref=conv_ref, conv_kind=kind, size_bucket=size)

    def sent(
        self, t: int, k_tel: bytes, message_id: bytes, conv_ref: str, result: str = "accepted"
    ) -> dict[str, Any]:
        return self.event(
            "msg_sent",
            t,
            msg_ref=identifiers.msg_ref(k_tel, message_id),
            conv_ref=conv_ref,
            size_bucket="lt1k",
            path="relay" if self.mode == "relay" else "lightpush",
            peers_used=3,
            result=result,
            attempt=1,
        )

    def received(
        self,
        t: int,
        k_tel: bytes,
        message_id: bytes,
        conv_ref: str,
        lat_ms: int,
        via: str = "relay",
    ) -> dict[str, Any]:
        return self.event(
            "msg_recv",
            t,
            msg_ref=identifiers.msg_ref(k_tel, message_id),
            conv_ref=conv_ref,
            via=via,
            lat_ms=lat_ms,
            decrypt_ok=True,
        )

    def confirm(self, t: int, k_tel: bytes, message_id: bytes, kind: str) -> dict[str, Any]:
        return self.event(
            "msg_confirm",
            t,
            msg_ref=identifiers.msg_ref(k_tel, message_id),
            kind=kind,
            delay_ms=800,
        )

    def heartbeat(
        self, t: int, *, online_s: int = 300, offline_s: int = 0, **msgs: int
    ) -> dict[str, Any]:
        return self.event(
            "heartbeat",
            t,
            net="online" if offline_s == 0 else "offline",
            online_s=online_s,
            offline_s=offline_s,
            peers={"min": 2, "max": 5, "last": 4},
            filter_subs=0,
            store={"ok": 1, "fail": 0},
            dial_fail={},
            bw={"relay": {"in": 10_000, "out": 8_000}},
            msgs=msgs,
        )

    def batch(
        self,
        events: list[dict[str, Any]],
        *,
        sent_at: int,
        batch_id: str | None = None,
        outbox_len: int = 0,
    ) -> dict[str, Any]:
        return schema.batch_json(
            batch_id=batch_id or identifiers.new_id(),
            install_id=self.install_id,
            client_sent_at=sent_at,
            app=app(self.mode, self.version),
            health={
                "outbox_len": outbox_len,
                "oldest_pending_age_s": 0,
                "dropped_total": dict(self.dropped),
                "upload_failures_total": 0,
            },
            events=events,
        )


def gzip_json(value: Any) -> bytes:
    return gzip.compress(json.dumps(value).encode())
