"""Unlocking a profile from the command line: the passphrase from the environment or a
prompt at the terminal, and the profile opened and locked through chat.session.

Without a passphrase and without a terminal to ask at (a service, a script with stdin
closed), this says so in one sentence instead of falling into a prompt nobody answers."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from chat.config import PASSPHRASE_ENV, Config, passphrase_from_env
from chat.errors import UserError
from chat.logs import register_secret
from chat.session import Session
from storage.store import Store


def ask_passphrase(prompt: str, env: str = PASSPHRASE_ENV) -> str:
    """`env` (CHINWAG_PASSPHRASE) when set, else typed at the terminal. Either way it is
    never logged."""
    value = passphrase_from_env(env)
    if value is None:
        return prompt_passphrase(prompt, env)
    register_secret(value)
    return value


def prompt_passphrase(prompt: str, env: str = PASSPHRASE_ENV) -> str:
    """A passphrase typed at the terminal; a UserError when there is no terminal to ask at
    (it names `env`, the variable that would have given it) or the input ends first."""
    if not has_terminal():
        raise UserError(f"no passphrase: set {env}, or run chinwag in a terminal to type it")
    try:
        value = getpass.getpass(prompt)
    except EOFError:
        raise UserError("no passphrase was typed (the input ended)") from None
    if value:
        register_secret(value)
    return value


def has_terminal() -> bool:
    """Whether getpass can ask someone: it prompts on the controlling terminal, else stdin."""
    if sys.stdin is not None and sys.stdin.isatty():
        return True
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


@contextmanager
def unlock_profile(config: Config) -> Iterator[Store]:
    """The configured profile, open and locked for the block; or a UserError that says why
    not (checked before prompting: no such profile, in use elsewhere)."""
    session = Session(config)
    lock = session.lock()
    try:
        passphrase = ask_passphrase(f"Passphrase for '{config.profile}': ")
    except BaseException:
        lock.release()
        raise
    with session.unlock(passphrase, lock=lock) as profile:
        yield profile.store
