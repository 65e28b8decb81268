"""CLI subcommands: one module each, listed in chat.cli.COMMANDS.

A command module provides NAME, HELP, `add_arguments(parser)` and `run(args, config) -> int`,
and may set USES_PROFILE = False when it is not about one profile (it then logs to the data dir).
Only commands that really work are listed, so `chinwag --help` never advertises a stub.
"""

from __future__ import annotations

import argparse
from typing import Protocol

from chat.config import Config


class Command(Protocol):
    NAME: str
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, config: Config) -> int: ...
