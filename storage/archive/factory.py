"""Open the archive a store node is configured with: a SQLite file (the default), or a
PostgreSQL database given by URL."""

from __future__ import annotations

from pathlib import Path

from storage.archive.base import Archive, ArchiveUnavailable, RetentionPolicy
from storage.archive.sqlite import SqliteArchive

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


def open_archive(location: str | Path, retention: RetentionPolicy | None = None) -> Archive:
    """The archive at `location`. Raises ArchiveError (ArchiveUnavailable when it cannot be
    opened or reached)."""
    if isinstance(location, str) and is_postgres_url(location):
        try:
            from storage.archive.postgres import PostgresArchive
        except ImportError:
            raise ArchiveUnavailable(
                "a PostgreSQL archive needs psycopg: pip install 'chinwag[postgres]'"
            ) from None
        return PostgresArchive(location, retention)
    path = Path(location)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveUnavailable(f"cannot create {path.parent}: {exc}") from None
    return SqliteArchive(path, retention)
