"""The archive interface the store server uses, and the values that cross it.

Ordering contract (shared by every backend): messages are ordered by (timestamp, hash)
ascending. A query walks that order forwards or backwards, starts strictly after the cursor
(in walking order), and returns at most `limit` rows *in walking order*. Turning rows into a
store response (ascending list, next cursor) is the caller's job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

HASH_SIZE = 32


class ArchiveError(Exception):
    """The archive could not do what was asked; the message says why."""


class ArchiveFull(ArchiveError):
    """A write did not fit: the disk, or the configured byte cap, is full. Nothing was stored."""


class ArchiveUnavailable(ArchiveError):
    """The archive is closed or cannot be reached right now."""


class CursorNotFound(ArchiveError):
    """The pagination cursor names a message the archive does not hold."""

    def __init__(self) -> None:
        super().__init__("cursor not found")


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One message to store. `message` is the encoded WakuMessage, kept verbatim."""

    message_hash: bytes
    pubsub_topic: str
    content_topic: str
    timestamp: int
    message: bytes


@dataclass(frozen=True, slots=True)
class ArchiveQuery:
    """One page request. Filters are ANDed; empty/None means "any".

    `time_end` is inclusive, as in nwaku's SQL. `limit` is taken as given (the caller
    clamps it and asks for one extra row to learn whether more exist).

    `max_bytes` bounds the message bytes one page holds (queries with data only): the archive
    stops before the row that would take the page over it (the first row is always
    returned) and ends the page with that row's hash and timestamp marked `beyond_budget`,
    without its data, so the caller knows more rows exist. Only one row beyond the budget
    is ever read.
    """

    pubsub_topic: str | None = None
    content_topics: tuple[str, ...] = ()
    time_start: int | None = None
    time_end: int | None = None
    message_hashes: tuple[bytes, ...] = ()
    cursor: bytes | None = None
    forward: bool = True
    limit: int = 20
    include_data: bool = False
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class ArchiveRow:
    """One result. `pubsub_topic` and `message` are None unless the query asked for data,
    and in the row that only says the page ended at its byte budget (`beyond_budget`)."""

    message_hash: bytes
    timestamp: int
    pubsub_topic: str | None = None
    message: bytes | None = None
    beyond_budget: bool = False


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Limits enforced by `Archive.apply_retention`; None means "no limit of this kind".

    `max_bytes` is also a hard cap on the archive's disk use: a backend that cannot grow
    beyond it evicts the oldest messages to make room for new ones.
    """

    max_age_ns: int | None = None
    max_messages: int | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_age_ns", "max_messages", "max_bytes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")


class Archive(ABC):
    """What the store service needs from a message archive. Methods block; call them from a
    worker thread in async code. Implementations must be safe to call from several threads."""

    @abstractmethod
    def insert(self, record: ArchiveRecord) -> bool:
        """Store one message. False if its hash is already stored. Raises ArchiveFull."""

    def insert_many(self, records: Sequence[ArchiveRecord]) -> int:
        """Store many messages (bulk loads); returns how many were new. Backends may batch."""
        return sum(self.insert(r) for r in records)

    @abstractmethod
    def query(self, query: ArchiveQuery) -> list[ArchiveRow]:
        """At most `query.limit` rows in walking order. Raises CursorNotFound, ArchiveError."""

    @abstractmethod
    def present(self, message_hashes: Sequence[bytes]) -> set[bytes]:
        """The subset of the given hashes that is stored."""

    @abstractmethod
    def apply_retention(self, now_ns: int) -> int:
        """Delete what the retention policy no longer allows; returns how many were deleted."""

    @abstractmethod
    def message_count(self) -> int: ...

    @abstractmethod
    def size_bytes(self) -> int:
        """Bytes the archive occupies on disk (what a byte cap is measured against)."""

    @abstractmethod
    def close(self) -> None: ...
