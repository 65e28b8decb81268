"""The `chinwag` command: global options, then one subcommand from chat.commands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from chat import __version__
from chat.commands import collector, info, lab, link, node, profile, serve, telemetry, tui
from chat.config import LOG_LEVELS, Config, load_config
from chat.errors import UserError
from chat.logs import setup_logging

COMMANDS: tuple[ModuleType, ...] = (
    tui,
    info,
    profile,
    link,
    node,
    serve,
    collector,
    lab,
    telemetry,
)
"""Every subcommand that works. Add a module here only when it does something real."""

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chinwag",
        description="A peer-to-peer chat client for the terminal, on a Waku-compatible network.",
        epilog="Without a command chinwag starts the chat UI; --peer, --store-peer, --listen "
        "and --fleet before any command are its network options (as after 'tui').",
    )
    parser.add_argument("--version", action="version", version=f"chinwag {__version__}")
    parser.add_argument(
        "--data-dir", type=Path, help="where profiles live (default: the user data dir)"
    )
    parser.add_argument("--profile", help="which profile to use (default: 'default')")
    parser.add_argument("--config", type=Path, help="config file (default: the user config dir)")
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, type=str.upper, help="log file verbosity (default INFO)"
    )
    tui.add_top_level_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        cmd_parser = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd_parser)
        cmd_parser.set_defaults(_module=module)
    return parser


def _config_from(args: argparse.Namespace) -> Config:
    return load_config(
        config_file=args.config,
        data_dir=args.data_dir,
        profile=args.profile,
        log_level=args.log_level,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = _config_from(args)
        module: ModuleType = getattr(args, "_module", tui)  # no command: the chat UI
        if module is not tui and (given := tui.options_given(args)):
            raise UserError(
                f"{', '.join(given)} before a command is for the chat UI; "
                f"put it after '{module.NAME}' (chinwag {module.NAME} --help)"
            )
        # Commands about one profile log into that profile; the others into the data dir.
        uses_profile = getattr(module, "USES_PROFILE", True)
        log_file = config.log_file if uses_profile else config.data_dir / "logs" / "chinwag.log"
        try:
            setup_logging(log_file, config.log_level)
        except OSError as exc:  # a read-only data directory, a file where a folder should be
            raise UserError(
                f"cannot write the log file {log_file} ({exc.strerror or exc}): the data "
                f"directory {config.data_dir} must be writable (--data-dir chooses another)"
            ) from None
        log.info("chinwag %s starting command=%s", __version__, module.NAME)
        code: int = module.run(args, config)
        return code
    except UserError as exc:
        print(f"chinwag: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("chinwag: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
