"""Unlocking a profile from the command line: passphrase from the environment or a prompt,
and the advisory lock that keeps a second chinwag process off a profile in use."""

from __future__ import annotations

import fcntl
import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chat.config import Config, passphrase_from_env
from chat.errors import UserError
from chat.logs import register_secret
from storage.errors import ProfileNotFound, StorageError
from storage.profiles import Profiles
from storage.store import Store

LOCK_FILE_NAME = "lock"
"""In the profile directory; empty. The lock is the flock on it, not the file's existence,
so a crashed process never leaves the profile locked."""


def ask_passphrase(prompt: str) -> str:
    """`CHINWAG_PASSPHRASE` when set, else a prompt. Either way it is never logged."""
    value = passphrase_from_env() or ""
    if not value:
        value = getpass.getpass(prompt)
    if value:
        register_secret(value)
    return value


@contextmanager
def profile_lock(directory: Path, name: str) -> Iterator[None]:
    """Hold the profile's advisory lock for the block, or raise a UserError at once when
    another process holds it. Two processes writing one profile would fork its Olm state
    (each ratchets sessions and rotates keys the other never sees)."""
    try:
        fd = os.open(directory / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        raise UserError(str(ProfileNotFound(name))) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"profile '{name}' is in use by another chinwag process; quit that one first."
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def unlock_profile(config: Config) -> Iterator[Store]:
    """The configured profile, open and locked for the block; or a UserError that says why
    not (checked before prompting: no such profile, in use elsewhere)."""
    profiles = Profiles(config.profiles_dir, on_key=register_secret)
    name = config.profile
    try:
        directory = profiles.files(name).directory
    except StorageError as exc:
        raise UserError(str(exc)) from None
    with profile_lock(directory, name):
        try:
            key = profiles.derive_key(name, ask_passphrase(f"Passphrase for '{name}': "))
            store = profiles.open(name, key)
        except StorageError as exc:
            raise UserError(str(exc)) from None
        with store:
            yield store
