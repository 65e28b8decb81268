"""`chinwag` (or `chinwag tui`): the terminal UI. Textual and libp2p are imported only here,
when the UI actually starts, so `chinwag --help` and the other commands stay quick."""

from __future__ import annotations

import argparse
import sys

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
    if passphrase:
        register_secret(passphrase)
    from ui.app import run_tui

    return run_tui(config, passphrase=passphrase)
