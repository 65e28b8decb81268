"""What a store node keeps: eligibility (sans-IO) and the writer that feeds the archive.

A message is archived when it is not ephemeral and its timestamp lies within ±20 s of the
node's clock at archive time (nwaku `MaxMessageTimestampVariance`). A full disk is reported
(outcome DISK_FULL, one warning per episode) and the node carries on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

import trio

from chat.waku.message import WakuMessage, message_hash, now_ns
from storage.archive import Archive, ArchiveError, ArchiveFull, ArchiveRecord

log = logging.getLogger(__name__)

MAX_TIMESTAMP_VARIANCE_NS = 20 * 10**9
DEFAULT_RETENTION_INTERVAL = 30 * 60.0
"""Seconds between retention passes (nwaku's default interval)."""


class ArchiveOutcome(Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    EPHEMERAL = "ephemeral"
    TOO_OLD = "too_old"
    TOO_NEW = "too_new"
    DISK_FULL = "disk_full"
    FAILED = "failed"


def ineligibility(msg: WakuMessage, now: int) -> ArchiveOutcome | None:
    """Why `msg` must not be archived at time `now` (ns), or None if it may be."""
    if msg.ephemeral:
        return ArchiveOutcome.EPHEMERAL
    if msg.timestamp < now - MAX_TIMESTAMP_VARIANCE_NS:
        return ArchiveOutcome.TOO_OLD
    if msg.timestamp > now + MAX_TIMESTAMP_VARIANCE_NS:
        return ArchiveOutcome.TOO_NEW
    return None


class MessageArchiver:
    """Writes eligible relay messages to the archive from a worker thread; counts outcomes."""

    def __init__(self, archive: Archive, *, clock_ns: Callable[[], int] = now_ns) -> None:
        self.archive = archive
        self.clock_ns = clock_ns
        self.outcomes: Counter[ArchiveOutcome] = Counter()
        self.disk_full = False
        """True from a write that did not fit until the next write that does."""
        self.retention_passes = 0

    async def archive_message(
        self, pubsub_topic: str, msg: WakuMessage, encoded: bytes | None = None
    ) -> ArchiveOutcome:
        """Archive one relay message. `encoded` is the bytes as received, stored verbatim."""
        outcome = ineligibility(msg, self.clock_ns())
        if outcome is None:
            record = ArchiveRecord(
                message_hash=message_hash(pubsub_topic, msg),
                pubsub_topic=pubsub_topic,
                content_topic=msg.content_topic,
                timestamp=msg.timestamp,
                message=encoded if encoded is not None else msg.encode(),
            )
            outcome = await self._write(record)
        self.outcomes[outcome] += 1
        return outcome

    async def archive_synced(self, records: Sequence[ArchiveRecord]) -> int:
        """Archive messages a sync peer sent (chat/waku/sync) in one transaction; returns how
        many were new (duplicates by hash are dropped). They are history, older than the ±20 s
        rule for relay allows: the caller checks them against its sync window and leaves out
        ephemeral ones. A full disk or archive error is reported like a relay write's (0 new).
        Counted by the sync service, not with relay's outcomes."""
        try:
            added = await trio.to_thread.run_sync(self.archive.insert_many, records)
        except ArchiveFull as exc:
            if not self.disk_full:
                log.warning("archive is full; synced messages are not stored: %s", exc)
            self.disk_full = True
            return 0
        except ArchiveError as exc:
            log.warning("archive write of synced messages failed: %s", exc)
            return 0
        self.disk_full = False
        return int(added)

    async def _write(self, record: ArchiveRecord) -> ArchiveOutcome:
        try:
            added = await trio.to_thread.run_sync(self.archive.insert, record)
        except ArchiveFull as exc:
            if not self.disk_full:
                log.warning("archive is full; new messages are not stored: %s", exc)
            self.disk_full = True
            return ArchiveOutcome.DISK_FULL
        except ArchiveError as exc:
            log.warning("archive write failed: %s", exc)
            return ArchiveOutcome.FAILED
        if self.disk_full:
            log.info("archive accepts writes again")
            self.disk_full = False
        return ArchiveOutcome.STORED if added else ArchiveOutcome.DUPLICATE

    async def run_retention(
        self,
        interval: float = DEFAULT_RETENTION_INTERVAL,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Apply the archive's retention policy now and then every `interval` seconds.
        With `nursery.start`, returns once the first pass is done."""
        while True:
            await self.retention_pass()
            self.retention_passes += 1
            if self.retention_passes == 1:
                task_status.started()
            await trio.sleep(interval)

    async def retention_pass(self) -> int:
        """Apply the retention policy once; returns how many messages it removed."""
        try:
            deleted = await trio.to_thread.run_sync(self.archive.apply_retention, self.clock_ns())
        except ArchiveError as exc:
            log.warning("retention pass failed: %s", exc)
            return 0
        if deleted:
            log.info("retention removed %d archived messages", deleted)
        return deleted
