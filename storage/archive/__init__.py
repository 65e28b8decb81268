"""Message archives for the store service: one interface, pluggable backends.

The interface speaks plain values only (hash bytes, topics, timestamps, encoded message
bytes) so storage/ never depends on chat/. SQLite ships today; a PostgreSQL backend only has
to implement `Archive`.
"""

from storage.archive.base import (
    Archive,
    ArchiveError,
    ArchiveFull,
    ArchiveQuery,
    ArchiveRecord,
    ArchiveRow,
    ArchiveUnavailable,
    CursorNotFound,
    RetentionPolicy,
)
from storage.archive.sqlite import SqliteArchive

__all__ = [
    "Archive",
    "ArchiveError",
    "ArchiveFull",
    "ArchiveQuery",
    "ArchiveRecord",
    "ArchiveRow",
    "ArchiveUnavailable",
    "CursorNotFound",
    "RetentionPolicy",
    "SqliteArchive",
]
