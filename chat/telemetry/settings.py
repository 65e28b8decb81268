"""Consent and where telemetry goes: the `[telemetry]` table of the config file, the
`chinwag serve --telemetry LEVEL --collector URL --cohort CODE` options, and the
`CHINWAG_TELEMETRY=off` override that beats every setting (docs/telemetry.md, "Consent").

Off by default: nothing is recorded, stored or sent until a level is chosen. Levels:
`off`; `health` (session, heartbeat and error events: counters only); `reliability` (adds the
per-message events: sent, confirmed, received, gaps, conversation joins).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_OVERRIDE = "CHINWAG_TELEMETRY"


class SettingsError(ValueError):
    """A telemetry setting that cannot be used, in one sentence (chat.config and the
    options turn it into a ConfigError: this module imports nothing else of chat/)."""


LEVELS = ("off", "health", "reliability")
"""As chat.telemetry.schema.LEVELS (not imported: the config file is read by every command)."""
_COHORT_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.+_-")


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    level: str = "off"
    collector: str | None = None
    """The collector's base URL (http or https)."""
    cohort: str | None = None
    """The cohort code the collector's operator gave (a dogfood wave)."""
    dry_run: Path | None = None
    """Write each batch to this file (JSON lines) instead of sending it."""
    heartbeat_seconds: float = 300.0
    upload_seconds: float = 60.0
    """How often a heartbeat is recorded and a batch may leave (QA runs shorten them)."""
    forced_off: bool = False
    """CHINWAG_TELEMETRY=off was set: nothing else counts."""

    @property
    def enabled(self) -> bool:
        return self.level != "off" and not self.forced_off

    def with_options(
        self,
        level: str | None = None,
        collector: str | None = None,
        cohort: str | None = None,
        dry_run: Path | None = None,
    ) -> TelemetrySettings:
        """Command-line options over the config file's table."""
        changed = self
        if level is not None:
            changed = replace(changed, level=check_level(level, "--telemetry"))
        if collector is not None:
            changed = replace(changed, collector=check_collector(collector, "--collector"))
        if cohort is not None:
            changed = replace(changed, cohort=check_cohort(cohort, "--cohort"))
        if dry_run is not None:
            changed = replace(changed, dry_run=dry_run)
        return changed.checked()

    def checked(self) -> TelemetrySettings:
        if self.enabled and self.collector is None and self.dry_run is None:
            raise SettingsError(
                f"telemetry level {self.level} needs a collector URL (--collector or "
                "[telemetry] collector) or a dry-run file"
            )
        return self


def check_level(value: Any, where: str) -> str:
    if value not in LEVELS:
        raise SettingsError(f"{where} must be one of {', '.join(LEVELS)}, not {value!r}")
    return str(value)


def check_collector(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > 2000:
        raise SettingsError(f"{where} must be a URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{where} must be an http:// or https:// URL, not {value!r}")
    return value.rstrip("/")


def check_cohort(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 32 or set(value) - _COHORT_CHARS:
        raise SettingsError(f"{where} must be 1-32 of A-Z a-z 0-9 . + _ -")
    return value


def parse_table(raw: Mapping[str, Any], where: str = "telemetry") -> TelemetrySettings:
    """The config file's `[telemetry]` table: level, collector, cohort, dry_run,
    heartbeat_seconds, upload_seconds."""
    unknown = set(raw) - {
        "level",
        "collector",
        "cohort",
        "dry_run",
        "heartbeat_seconds",
        "upload_seconds",
    }
    if unknown:
        raise SettingsError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    settings = TelemetrySettings()
    if "level" in raw:
        settings = replace(settings, level=check_level(raw["level"], f"{where}.level"))
    if "collector" in raw:
        settings = replace(
            settings, collector=check_collector(raw["collector"], f"{where}.collector")
        )
    if "cohort" in raw:
        settings = replace(settings, cohort=check_cohort(raw["cohort"], f"{where}.cohort"))
    if "dry_run" in raw:
        if not isinstance(raw["dry_run"], str) or not raw["dry_run"]:
            raise SettingsError(f"{where}.dry_run must be a file path")
        settings = replace(settings, dry_run=Path(raw["dry_run"]).expanduser())
    for name in ("heartbeat_seconds", "upload_seconds"):
        if name in raw:
            value = raw[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingsError(f"{where}.{name} must be a number of seconds")
            if not 1 <= value <= 86_400:
                raise SettingsError(f"{where}.{name} must be from 1 to 86400 seconds")
            if name == "heartbeat_seconds":
                settings = replace(settings, heartbeat_seconds=float(value))
            else:
                settings = replace(settings, upload_seconds=float(value))
    return settings


def apply_environment(
    settings: TelemetrySettings, environ: Mapping[str, str] | None = None
) -> TelemetrySettings:
    """CHINWAG_TELEMETRY=off beats the config file and the options; any other value is an
    error (it would look like it turns telemetry on, and it must not)."""
    value = (os.environ if environ is None else environ).get(ENV_OVERRIDE)
    if value is None or value == "":
        return settings
    if value.strip().lower() != "off":
        raise SettingsError(f"{ENV_OVERRIDE} can only be 'off' (it turns telemetry off)")
    return replace(settings, forced_off=True)


def allowed_types(level: str) -> frozenset[str]:
    """The event types a level records: `health` its own, `reliability` every one."""
    from chat.telemetry.schema import EVENT_TYPES

    if level == "reliability":
        return frozenset(EVENT_TYPES)
    if level == "health":
        return frozenset(name for name, kind in EVENT_TYPES.items() if kind.level == "health")
    return frozenset()
