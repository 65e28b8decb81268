"""`chinwag` (or `chinwag tui`): the terminal UI. Textual and libp2p are imported only here,
when the UI actually starts, so `chinwag --help` and the other commands stay quick.

With CHINWAG_PASSPHRASE set, the key derivation (Argon2id, the slowest single step of a
launch) starts on a thread before Textual is even imported: it runs in C without the GIL,
so it overlaps the imports instead of following them."""

from __future__ import annotations

import argparse
import sys
import threading
from concurrent.futures import Future

from chat.config import Config, passphrase_from_env
from chat.errors import UserError
from chat.logs import register_secret

NAME = "tui"
HELP = "the terminal chat UI (what 'chinwag' without a command starts)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options of its own: --profile, --data-dir and CHINWAG_PASSPHRASE apply."""


def run(args: argparse.Namespace, config: Config) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("the chat UI needs a terminal; run 'chinwag --help' for the other commands")
    passphrase = passphrase_from_env()
    derived_key = None
    if passphrase:
        register_secret(passphrase)
        derived_key = derive_key_early(config, passphrase)
    from ui.app import run_tui

    return run_tui(config, passphrase=passphrase, derived_key=derived_key)


def derive_key_early(config: Config, passphrase: str) -> Future[bytes]:
    """The profile's database key, derived on a thread; its errors (no such profile, wrong
    passphrase) surface where the app unlocks, as the same sentences."""
    from storage.profiles import Profiles

    future: Future[bytes] = Future()
    profiles = Profiles(config.profiles_dir, on_key=register_secret)

    def derive() -> None:
        try:
            future.set_result(profiles.derive_key(config.profile, passphrase))
        except BaseException as exc:  # handed over, not lost: the app raises it on unlock
            future.set_exception(exc)

    threading.Thread(target=derive, name="derive-key", daemon=True).start()
    return future
