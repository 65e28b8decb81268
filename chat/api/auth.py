"""The API token: one per profile, random, kept in a file only its owner can read, reused
across runs so scripts keep working; every request must carry it as a bearer token."""

from __future__ import annotations

import hmac
import os
import re
import secrets
import stat
from pathlib import Path

from chat.errors import UserError

TOKEN_FILE_NAME = "api-token"
TOKEN_BYTES = 32
"""256 bits from the OS's CSPRNG, URL-safe base64 (43 characters)."""

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_BEARER = b"bearer "


class TokenFileError(UserError):
    """The token file exists but cannot be used."""


def load_or_create_token(directory: Path) -> str:
    """The token kept in `directory` (a profile directory), created on first use.

    The file is created with mode 0600 in one step (never world-readable, not even for an
    instant); a file that lost its 0600 is tightened back, and one that does not hold a token
    of ours (damaged, truncated) is replaced with a fresh token.
    """
    path = directory / TOKEN_FILE_NAME
    existing = _read_token(path)
    if existing is not None:
        return existing
    token = secrets.token_urlsafe(TOKEN_BYTES)
    # Write beside it, then rename: a crash never leaves a half-written token behind.
    partial = path.with_name(f".{TOKEN_FILE_NAME}.{os.getpid()}.tmp")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{token}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    except OSError as exc:
        raise TokenFileError(
            f"the API token cannot be written to {path}: {exc.strerror}."
        ) from None
    return token


def _read_token(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TokenFileError(f"the API token file {path} cannot be read: {exc.strerror}.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TokenFileError(f"the API token file {path} is not a regular file.")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
        text = os.read(fd, 256).decode("ascii", errors="replace").strip()
    finally:
        os.close(fd)
    return text if _TOKEN_SHAPE.match(text) else None


def bearer_matches(authorization: bytes | None, token: str) -> bool:
    """Whether an `Authorization` header value carries `token` as a bearer token. The
    comparison takes the same time wherever the first wrong byte is."""
    if authorization is None or authorization[: len(_BEARER)].lower() != _BEARER:
        return False
    offered = authorization[len(_BEARER) :].strip()
    return hmac.compare_digest(offered, token.encode("ascii"))
