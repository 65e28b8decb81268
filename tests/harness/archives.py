"""Archives of either backend for the store tests: SQLite files in the test's directory, or
databases on the session's PostgreSQL server (tests/harness/postgres.py), one per name, so
that a test can open the same archive twice (a reopen, or two nodes sharing one)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.postgres import PostgresServer
from storage.archive import Archive, ArchiveRecord, RetentionPolicy, SqliteArchive

BACKENDS = ("sqlite", "postgresql")

T0 = 1_700_000_000 * 10**9
SECOND = 10**9
PUBSUB = "/waku/2/rs/42/0"
OTHER_PUBSUB = "/waku/2/rs/42/1"


def record(
    i: int,
    *,
    topic: str = "/app/1/a/proto",
    pubsub: str = PUBSUB,
    ts: int | None = None,
    size: int = 50,
) -> ArchiveRecord:
    h = hashlib.sha256(b"msg" + i.to_bytes(8, "big")).digest()
    return ArchiveRecord(h, pubsub, topic, T0 + i * SECOND if ts is None else ts, payload(i, size))


def payload(i: int, size: int) -> bytes:
    # Incompressible, as real (encrypted) payloads are: PostgreSQL would compress repeats.
    return hashlib.shake_256(b"payload" + i.to_bytes(8, "big")).digest(size)


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
