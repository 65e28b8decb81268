"""The telemetry options of `chinwag serve` (and any face that runs a messenger):
`--telemetry LEVEL --collector URL [--cohort CODE] [--telemetry-dry-run FILE]`, over the
config file's `[telemetry]` table, under `CHINWAG_TELEMETRY=off`."""

from __future__ import annotations

import argparse
from pathlib import Path

from chat.config import Config
from chat.errors import ConfigError
from chat.telemetry.settings import LEVELS, SettingsError, TelemetrySettings, apply_environment


def add_telemetry_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("telemetry (opt-in; docs/telemetry.md)")
    group.add_argument(
        "--telemetry", choices=LEVELS, metavar="LEVEL",
        help="send reliability telemetry: off, health or reliability (default: the config "
        "file's [telemetry] level, else off; CHINWAG_TELEMETRY=off always wins)",
    )  # fmt: skip
    group.add_argument("--collector", metavar="URL", help="the telemetry collector's URL")
    group.add_argument("--cohort", metavar="CODE", help="the collector's cohort code")
    group.add_argument(
        "--telemetry-dry-run", type=Path, metavar="FILE",
        help="write each telemetry batch to FILE (JSON lines) instead of sending it",
    )  # fmt: skip


def telemetry_settings(args: argparse.Namespace, config: Config) -> TelemetrySettings:
    """Options over the config file, under the environment's override; a ConfigError for a
    level without a collector (unless CHINWAG_TELEMETRY=off: then telemetry is off anyway)."""
    try:
        return apply_environment(config.telemetry).with_options(
            level=args.telemetry,
            collector=args.collector,
            cohort=args.cohort,
            dry_run=args.telemetry_dry_run,
        )
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None


def effective(config: Config) -> TelemetrySettings:
    """The config file's table under the environment's override (for `chinwag telemetry`)."""
    try:
        return apply_environment(config.telemetry)
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
