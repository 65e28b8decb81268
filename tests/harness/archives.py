"""Archives of either backend for the store tests: SQLite files in the test's directory, or
schemas in one database of the session's PostgreSQL server (tests/harness/postgres.py), one
per name (a fresh schema is milliseconds, a fresh database most of a second), so that a test
can open the same archive twice (a reopen, or two nodes sharing one)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from storage.archive import Archive, ArchiveRecord, RetentionPolicy, SqliteArchive
from storage.archive.factory import is_postgres_url

if TYPE_CHECKING:
    from chat.waku.service_node import StoreOptions

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
    def __init__(self, name: str, directory: Path, database_url: str | None = None) -> None:
        if name not in BACKENDS:
            raise ValueError(f"unknown archive backend {name}")
        if name == "postgresql" and database_url is None:
            raise ValueError("a PostgreSQL backend needs a database")
        self.name = name
        self.directory = directory
        self.database_url = database_url
        self._urls: dict[str, str] = {}

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgresql"

    def location(self, name: str = "archive") -> str:
        """What `chinwag node --archive` takes: a file path, or a postgresql:// URL."""
        if not self.is_postgres:
            return str(self.directory / f"{name}.sqlite")
        assert self.database_url is not None
        if name not in self._urls:
            import psycopg

            schema = f"s{uuid.uuid4().hex}"
            with psycopg.connect(self.database_url, autocommit=True) as db:
                db.execute(f"CREATE SCHEMA {schema}")
            self._urls[name] = f"{self.database_url}?options=-csearch_path%3D{schema}"
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


def store_options_for(location: str | Path) -> StoreOptions:
    """A store node's options for an archive location (a path, or a postgresql:// URL)."""
    from chat.waku.service_node import StoreOptions

    if isinstance(location, str) and is_postgres_url(location):
        return StoreOptions(archive_path=Path("unused.sqlite"), archive_url=location)
    return StoreOptions(Path(location))
