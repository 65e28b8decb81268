"""Profiles on disk: create, list, unlock, change passphrase, delete.

A profile is a directory holding `key.json` (KDF salt and parameters, a key check value and the
name of the current database file) and that SQLCipher database. `key.json` is written last on
creation and replaced atomically on a passphrase change, so it is the single commit point: a
crash at any moment leaves a profile that opens with either the old or the new passphrase.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storage.db import Database, open_database
from storage.errors import (
    EmptyPassphrase,
    ProfileExists,
    ProfileNotFound,
    WrongPassphrase,
)
from storage.kdf import KdfParams, derive_database_key, key_check, matches_check
from storage.keyfile import KEY_FILE_NAME, KeyFile, fsync_dir, read_key_file, write_key_file
from storage.store import Store

log = logging.getLogger(__name__)

_DB_PREFIX = "chinwag-"
_DB_SUFFIX = ".db"


@dataclass(frozen=True)
class ProfileFiles:
    name: str
    directory: Path
    key_file: KeyFile

    @property
    def database(self) -> Path:
        return self.directory / self.key_file.database

    def database_bytes(self) -> int:
        """Size on disk of the database and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                total += Path(f"{self.database}{suffix}").stat().st_size
        return total


def _new_database_name() -> str:
    return f"{_DB_PREFIX}{secrets.token_hex(6)}{_DB_SUFFIX}"


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_database_files(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{db}{suffix}").unlink()


def _remove_stale_databases(directory: Path, keep: str | None) -> None:
    """Delete database files left by an interrupted create or passphrase change."""
    for entry in directory.glob(f"{_DB_PREFIX}*{_DB_SUFFIX}*"):
        base = entry.name.split(_DB_SUFFIX)[0] + _DB_SUFFIX
        if base != keep:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()


class Profiles:
    """All profiles under one directory (`<data dir>/profiles`). Every method blocks:
    the key derivation alone takes about half a second by design."""

    def __init__(
        self, profiles_dir: Path, *, on_key: Callable[[bytes], None] | None = None
    ) -> None:
        self.profiles_dir = profiles_dir
        self._on_key = on_key

    def _derive(self, passphrase: str, params: KdfParams) -> bytes:
        key = derive_database_key(passphrase, params)
        if self._on_key is not None:
            self._on_key(key)  # e.g. register it with the log redactor before any use
        return key

    def directory(self, name: str) -> Path:
        # The CLI validates names for people; this guard keeps any caller inside profiles_dir.
        if not name or name in (".", "..") or Path(name).name != name or "\\" in name:
            raise ValueError(f"{name!r} is not a profile name")
        return self.profiles_dir / name

    def names(self) -> list[str]:
        if not self.profiles_dir.is_dir():
            return []
        return sorted(p.name for p in self.profiles_dir.iterdir() if (p / KEY_FILE_NAME).is_file())

    def exists(self, name: str) -> bool:
        return (self.directory(name) / KEY_FILE_NAME).is_file()

    def files(self, name: str) -> ProfileFiles:
        directory = self.directory(name)
        try:
            key_file = read_key_file(directory / KEY_FILE_NAME)
        except FileNotFoundError:
            raise ProfileNotFound(name) from None
        return ProfileFiles(name, directory, key_file)

    def create(
        self,
        name: str,
        passphrase: str,
        *,
        display_name: str,
        now: int,
        kdf: KdfParams | None = None,
    ) -> Store:
        """Create and return the unlocked profile. `kdf` defaults to the tuned parameters."""
        if not passphrase:
            raise EmptyPassphrase()
        if self.exists(name):
            raise ProfileExists(name)
        params = kdf or KdfParams.fresh()
        key = self._derive(passphrase, params)
        directory = self.directory(name)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _remove_stale_databases(directory, keep=None)
        key_file = KeyFile(kdf=params, check=key_check(key), database=_new_database_name())
        db = open_database(directory / key_file.database, key, create=True)
        store = Store(db, key)
        try:
            with db.transaction():
                store.meta.set("display_name", display_name)
                store.meta.set("created_at", str(now))
            write_key_file(directory / KEY_FILE_NAME, key_file)
        except BaseException:
            store.close()
            raise
        log.info("created profile %s", name)
        return store

    def derive_key(self, name: str, passphrase: str) -> bytes:
        """The database key, checked against the profile's key check value."""
        files = self.files(name)
        key = self._derive(passphrase, files.key_file.kdf)
        if not matches_check(key, files.key_file.check):
            log.info("wrong passphrase for profile %s", name)
            raise WrongPassphrase(name)
        return key

    def open(self, name: str, key: bytes) -> Store:
        """Open with a key from `derive_key` (callers register it as a secret in between)."""
        files = self.files(name)
        if not matches_check(key, files.key_file.check):
            raise WrongPassphrase(name)
        db = open_database(files.database, key)
        _remove_stale_databases(files.directory, keep=files.key_file.database)
        return Store(db, key)

    def unlock(self, name: str, passphrase: str) -> Store:
        return self.open(name, self.derive_key(name, passphrase))

    def change_passphrase(
        self, name: str, old: str, new: str, *, kdf: KdfParams | None = None
    ) -> None:
        """Re-encrypt into a new file under the new key, then switch key.json atomically.

        The profile must not be open elsewhere while this runs.
        """
        if not new:
            raise EmptyPassphrase()
        files = self.files(name)
        old_key = self.derive_key(name, old)
        params = kdf or KdfParams.fresh()
        new_key = self._derive(new, params)
        target = KeyFile(kdf=params, check=key_check(new_key), database=_new_database_name())
        new_db = files.directory / target.database
        _remove_database_files(new_db)
        db: Database = open_database(files.database, old_key)
        try:
            db.checkpoint()
            db.export_to(new_db, new_key)
        except BaseException:
            db.close()
            _remove_database_files(new_db)
            raise
        db.close()
        _fsync_file(new_db)
        fsync_dir(files.directory)
        write_key_file(files.directory / KEY_FILE_NAME, target)  # the commit point
        _remove_database_files(files.database)
        fsync_dir(files.directory)
        log.info("changed passphrase of profile %s", name)

    def delete(self, name: str) -> None:
        """Remove the profile directory and everything in it. There is no undo."""
        directory = self.directory(name)
        if not self.exists(name):
            raise ProfileNotFound(name)
        shutil.rmtree(directory)
        log.info("deleted profile %s", name)
