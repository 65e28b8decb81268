"""One SQLCipher connection per profile: keying, pragmas, migrations and error translation.

Repositories get a `Database` and never see raw sqlcipher3 errors: a full disk, a damaged file
or a lock held by another process each surface as their own StorageError.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlcipher3 import dbapi2 as sqlcipher

from storage import migrations
from storage.errors import DatabaseCorrupt, StorageBusy, StorageError, StorageFull

log = logging.getLogger(__name__)

PAGE_SIZE = 4096
"""SQLCipher 4's default page size; a file that is not a whole number of pages is truncated."""
CACHE_KIB = 64 * 1024
"""Page cache per connection. With the working set cached, encrypted reads cost about the same
as plain SQLite (docs/storage.md); with the 2 MB default they cost 2-4 times more."""
BUSY_TIMEOUT_MS = 2000

Row = tuple[Any, ...]
Params = Sequence[Any] | dict[str, Any]


def translate(exc: sqlcipher.Error, where: str) -> StorageError | sqlcipher.Error:
    """Map a driver error to the typed error a person can act on (or keep it if it is a bug)."""
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_FULL":
        return StorageFull()
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return DatabaseCorrupt(where, str(exc))
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return StorageBusy()
    return exc


@contextlib.contextmanager
def translated(where: str) -> Iterator[None]:
    try:
        yield
    except sqlcipher.Error as exc:
        mapped = translate(exc, where)
        if mapped is exc:
            raise
        raise mapped from None


class Database:
    """A keyed, migrated connection. Not async: wrap it in storage.aio for use under trio.

    The connection may be used from any one thread at a time (the async facade serialises
    calls on one worker); `transaction()` nests by joining the outer transaction.
    """

    def __init__(self, conn: sqlcipher.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._depth = 0
        self._lock = threading.RLock()

    @property
    def where(self) -> str:
        return f"the database {self.path}"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT; any exception rolls everything back."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with translated(self.where):
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
                with translated(self.where):
                    self._conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlcipher.Error):
                    self._conn.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the last inserted rowid."""
        with self._lock, translated(self.where):
            cur = self._conn.execute(sql, params)
            return int(cur.lastrowid or 0)

    def execute_count(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns how many rows it changed."""
        with self._lock, translated(self.where):
            return int(self._conn.execute(sql, params).rowcount)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with self._lock, translated(self.where):
            self._conn.executemany(sql, rows)

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        with self._lock, translated(self.where):
            return [tuple(r) for r in self._conn.execute(sql, params).fetchall()]

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        with self._lock, translated(self.where):
            row = self._conn.execute(sql, params).fetchone()
            return tuple(row) if row is not None else None

    def scalar(self, sql: str, params: Params = ()) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    @property
    def schema_version(self) -> int:
        return int(self.scalar("PRAGMA user_version"))

    def integrity_check(self) -> list[str]:
        return [str(r[0]) for r in self.fetchall("PRAGMA integrity_check")]

    def set_max_pages(self, pages: int) -> int:
        """Cap the file size (used to test a full disk); returns the cap in force."""
        return int(self.scalar(f"PRAGMA max_page_count = {int(pages)}"))

    def page_count(self) -> int:
        return int(self.scalar("PRAGMA page_count"))

    def checkpoint(self) -> None:
        with self._lock, translated(self.where):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def export_to(self, target: Path, database_key: bytes) -> None:
        """Write a full copy of this database to `target`, encrypted with another key."""
        with self._lock, translated(self.where):
            version = self.schema_version
            self._conn.execute(
                f"ATTACH DATABASE ? AS rekey KEY \"x'{database_key.hex()}'\"", (str(target),)
            )
            try:
                self._conn.execute("SELECT sqlcipher_export('rekey')").fetchall()
                # sqlcipher_export copies schema and rows but not the user_version.
                self._conn.execute(f"PRAGMA rekey.user_version = {version}")
            finally:
                self._conn.execute("DETACH DATABASE rekey")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _check_file_shape(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DatabaseCorrupt(f"the database {path}", "the file is missing") from None
    if size == 0:
        raise DatabaseCorrupt(f"the database {path}", "the file is empty")
    if size % PAGE_SIZE:
        raise DatabaseCorrupt(f"the database {path}", "the file is truncated")


def connect(path: Path, database_key: bytes, *, create: bool) -> sqlcipher.Connection:
    """Open and key the connection and prove the key decrypts page 1."""
    if len(database_key) != 32:
        raise ValueError("a database key is 32 bytes")
    if not create:
        _check_file_shape(path)
    where = f"the database {path}"
    with translated(where):
        conn = sqlcipher.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        with translated(where):
            # SQLCipher logs "hmac check failed" to stderr on a bad page; we report it ourselves.
            conn.execute("PRAGMA cipher_log_level = NONE").fetchall()
            conn.execute(f"PRAGMA key = \"x'{database_key.hex()}'\"")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            conn.execute("PRAGMA temp_store = MEMORY")  # never spill plaintext temp files
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except BaseException:
        conn.close()
        raise
    return conn


def open_database(
    path: Path, database_key: bytes, *, create: bool = False, target_version: int | None = None
) -> Database:
    """Open (or create) and migrate. `target_version` stops early: only tests use it."""
    conn = connect(path, database_key, create=create)
    db = Database(conn, path)
    try:
        with translated(db.where):
            migrations.migrate(conn, target_version)
    except BaseException:
        db.close()
        raise
    log.info("opened database schema=%d pages=%d", db.schema_version, db.page_count())
    return db
