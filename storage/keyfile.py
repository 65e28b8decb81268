"""The small JSON file beside each profile database: KDF salt and parameters, key check value,
and which database file is current.

It is the commit point of a passphrase change: it is only ever replaced atomically
(write a temporary file, fsync, rename, fsync the directory).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from storage.errors import DatabaseCorrupt
from storage.kdf import KdfParams

KEY_FILE_NAME = "key.json"
KEY_FILE_VERSION = 1
MAX_KEY_FILE_BYTES = 4096


@dataclass(frozen=True)
class KeyFile:
    kdf: KdfParams
    check: bytes
    database: str
    """File name (no directory) of the current database inside the profile directory."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": KEY_FILE_VERSION,
                "kdf": "argon2id",
                "opslimit": self.kdf.opslimit,
                "memlimit": self.kdf.memlimit,
                "salt": self.kdf.salt.hex(),
                "check": self.check.hex(),
                "database": self.database,
            },
            indent=2,
        )


def _bad(path: Path, detail: str) -> DatabaseCorrupt:
    return DatabaseCorrupt(f"the key file {path}", detail)


def read_key_file(path: Path) -> KeyFile:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _bad(path, exc.strerror or "unreadable") from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise _bad(path, "too large")
    try:
        data = json.loads(raw)
        if data.get("version") != KEY_FILE_VERSION or data.get("kdf") != "argon2id":
            raise ValueError("unknown version or KDF")
        ops, mem = data["opslimit"], data["memlimit"]
        if not (isinstance(ops, int) and isinstance(mem, int)):
            raise ValueError("parameters are not integers")
        kdf = KdfParams(salt=bytes.fromhex(data["salt"]), opslimit=ops, memlimit=mem)
        check = bytes.fromhex(data["check"])
        database = data["database"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _bad(path, f"unreadable: {exc}") from None
    if not kdf.valid() or len(check) != 32:
        raise _bad(path, "parameters out of range")
    if not isinstance(database, str) or Path(database).name != database or not database:
        raise _bad(path, "bad database name")
    return KeyFile(kdf=kdf, check=check, database=database)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(path: Path, key_file: KeyFile) -> None:
    """Atomically replace `path`: after a crash either the old or the new content is there."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key_file.to_json().encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
