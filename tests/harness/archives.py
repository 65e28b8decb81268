"""Archives of either backend for the store tests: SQLite files in the test's directory, or
databases on the session's PostgreSQL server (tests/harness/postgres.py), one per name, so
that a test can open the same archive twice (a reopen, or two nodes sharing one)."""

from __future__ import annotations

from pathlib import Path

from harness.postgres import PostgresServer
from storage.archive import Archive, RetentionPolicy, SqliteArchive

BACKENDS = ("sqlite", "postgresql")


class ArchiveBackend:
    def __init__(self, name: str, directory: Path, server: PostgresServer | None) -> None:
        if name not in BACKENDS:
            raise ValueError(f"unknown archive backend {name}")
        self.name = name
        self.directory = directory
        self.server = server
        self._urls: dict[str, str] = {}

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgresql"

    def location(self, name: str = "archive") -> str:
        """What `chinwag node --archive` takes: a file path, or a postgresql:// URL."""
        if not self.is_postgres:
            return str(self.directory / f"{name}.sqlite")
        assert self.server is not None
        if name not in self._urls:
            self._urls[name] = self.server.new_database()
        return self._urls[name]

    def open(
        self,
        retention: RetentionPolicy | None = None,
        *,
        name: str = "archive",
        partition_ns: int | None = None,
    ) -> Archive:
        if not self.is_postgres:
            return SqliteArchive(self.location(name), retention)
        from storage.archive.postgres import DEFAULT_PARTITION_NS, PostgresArchive

        return PostgresArchive(
            self.location(name), retention, partition_ns=partition_ns or DEFAULT_PARTITION_NS
        )
