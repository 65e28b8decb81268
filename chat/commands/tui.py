"""`chinwag` (or `chinwag tui`): the terminal UI. Textual and libp2p are imported only here,
when the UI actually starts, so `chinwag --help` and the other commands stay quick.

It takes the network options `chinwag serve` takes (`--peer`, `--store-peer`, `--listen`,
`--fleet`), with the same precedence (flags, then the fleet file, then the config file),
given before any command (`chinwag --fleet FILE`) or after `tui`. They are checked before
Textual starts: a mistake is one sentence, exit 2.

With CHINWAG_PASSPHRASE set, the key derivation (Argon2id, the slowest single step of a
launch) starts on a thread before Textual is even imported: it runs in C without the GIL,
so it overlaps the imports instead of following them."""

from __future__ import annotations

import argparse
import sys

from chat.config import Config, passphrase_from_env
from chat.errors import UserError
from chat.logs import register_secret
from chat.session import Session, add_network_arguments, messenger_settings, network_flags

NAME = "tui"
HELP = "the terminal chat UI (what 'chinwag' without a command starts)"

PREFIX = "tui_"
"""Where the UI's network options land in the namespace: apart from other commands' own
`--peer` and `--fleet`, so `chinwag --fleet FILE node` is refused, not silently ignored."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The network options; --profile, --data-dir and CHINWAG_PASSPHRASE apply too."""
    add_network_arguments(parser, prefix=PREFIX, suppress=True)


def add_top_level_arguments(parser: argparse.ArgumentParser) -> None:
    """The same options before any command, for `chinwag --fleet FILE`."""
    add_network_arguments(parser, prefix=PREFIX)


def options_given(args: argparse.Namespace) -> list[str]:
    """The UI's network options that were given (before any command, or after `tui`)."""
    options = ("--peer", "--store-peer", "--listen", "--fleet", "--light")
    return [o for o in options if getattr(args, PREFIX + o[2:].replace("-", "_"), None)]


def run(args: argparse.Namespace, config: Config) -> int:
    settings = messenger_settings(config, network_flags(args, prefix=PREFIX))
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("the chat UI needs a terminal; run 'chinwag --help' for the other commands")
    session = Session(config, settings)
    session.check_telemetry()  # a bad CHINWAG_TELEMETRY is one sentence, before Textual
    passphrase = passphrase_from_env()
    if passphrase:
        register_secret(passphrase)
        session.derive_early(passphrase)
    from ui.app import run_tui

    return run_tui(session, passphrase=passphrase)
