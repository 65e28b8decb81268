"""Unlocking a profile from the command line: passphrase from the environment or a prompt."""

from __future__ import annotations

import getpass

from chat.config import Config, passphrase_from_env
from chat.errors import UserError
from chat.logs import register_secret
from storage.errors import StorageError
from storage.profiles import Profiles
from storage.store import Store


def ask_passphrase(prompt: str) -> str:
    """`CHINWAG_PASSPHRASE` when set, else a prompt. Either way it is never logged."""
    value = passphrase_from_env() or ""
    if not value:
        value = getpass.getpass(prompt)
    if value:
        register_secret(value)
    return value


def unlock_profile(config: Config) -> Store:
    """Open the configured profile, or raise a UserError that says why not."""
    profiles = Profiles(config.profiles_dir, on_key=register_secret)
    name = config.profile
    try:
        profiles.files(name)  # fail before prompting when the profile does not exist
        key = profiles.derive_key(name, ask_passphrase(f"Passphrase for '{name}': "))
        return profiles.open(name, key)
    except StorageError as exc:
        raise UserError(str(exc)) from None
