"""Configuration: where things live and what the TOML config file says.

Locations follow platformdirs (XDG on Linux, ~/Library on macOS). `--data-dir` moves every
profile; each profile has its own directory holding its database, logs and tokens.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from chat.errors import ConfigError
from chat.telemetry.settings import SettingsError, TelemetrySettings
from chat.telemetry.settings import parse_table as parse_telemetry_table
from chat.waku.network import DEFAULT_CLUSTER_ID as DEFAULT_CLUSTER_ID
from chat.waku.network import DEFAULT_SHARDS as DEFAULT_SHARDS

APP_NAME = "chinwag"
PASSPHRASE_ENV = "CHINWAG_PASSPHRASE"
"""Reserved for unattended unlock: when set, it is used instead of prompting."""

DEFAULT_PROFILE = "default"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
NETWORK_MODES = ("relay", "light")
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Matched whole: with `match` and `$`, a name ending in a newline passed."""


def validate_profile_name(name: str) -> str:
    """Profile names become directory names, so keep them portable and unambiguous."""
    if not _PROFILE_NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(
            f"'{name}' is not a valid profile name: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return name


@dataclass(frozen=True)
class NetworkConfig:
    cluster_id: int = DEFAULT_CLUSTER_ID
    shards: tuple[int, ...] = DEFAULT_SHARDS
    peers: tuple[str, ...] = ()
    protected_shards: tuple[str, ...] = ()
    """`SHARD:PUBKEY` entries for `chinwag node`, in the --protected-shard form (checked there)."""
    mode: str = "relay"
    """"relay" (a full relay node) or "light" (filter, light push and store from the peers)."""


@dataclass(frozen=True)
class Config:
    """Effective settings: defaults, overlaid by the config file, overlaid by the command line."""

    config_file: Path
    data_dir: Path
    profile: str = DEFAULT_PROFILE
    log_level: str = "INFO"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    notify_bell: bool = True
    notify_desktop: bool = False
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    """The `[telemetry]` table (chat/telemetry/settings.py): off unless it says otherwise."""

    @property
    def profiles_dir(self) -> Path:
        return self.data_dir / "profiles"

    @property
    def profile_dir(self) -> Path:
        return self.profiles_dir / self.profile

    def profile_dir_for(self, name: str) -> Path:
        return self.profiles_dir / validate_profile_name(name)

    @property
    def log_file(self) -> Path:
        return self.profile_dir / "logs" / "chinwag.log"


def default_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if isinstance(value, bool) and kind is int:
        raise ConfigError(f"{where} must be a whole number, not {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where} has the wrong type: {value!r}")
    return value


def _parse_network(raw: Mapping[str, Any], where: str) -> NetworkConfig:
    known = {"cluster_id", "shards", "peers", "protected_shards", "mode"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    net = NetworkConfig()
    if "cluster_id" in raw:
        cid = _expect(raw["cluster_id"], int, f"{where}.cluster_id")
        if not 0 <= cid <= 65535:
            raise ConfigError(f"{where}.cluster_id must be between 0 and 65535, not {cid}")
        net = replace(net, cluster_id=cid)
    if "shards" in raw:
        shards = _expect(raw["shards"], list, f"{where}.shards")
        for s in shards:
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= 1023:
                raise ConfigError(f"{where}.shards must hold shard numbers 0-1023, not {s!r}")
        net = replace(net, shards=tuple(shards))
    if "peers" in raw:
        peers = _expect(raw["peers"], list, f"{where}.peers")
        if not all(isinstance(p, str) for p in peers):
            raise ConfigError(f"{where}.peers must be a list of multiaddr strings")
        net = replace(net, peers=tuple(peers))
    if "protected_shards" in raw:
        entries = _expect(raw["protected_shards"], list, f"{where}.protected_shards")
        if not all(isinstance(e, str) for e in entries):
            raise ConfigError(f"{where}.protected_shards must be a list of SHARD:PUBKEY strings")
        net = replace(net, protected_shards=tuple(entries))
    if "mode" in raw:
        mode = _expect(raw["mode"], str, f"{where}.mode")
        if mode not in NETWORK_MODES:
            choices = ", ".join(NETWORK_MODES)
            raise ConfigError(f"{where}.mode must be one of {choices}, not {mode!r}")
        net = replace(net, mode=mode)
    return net


def parse_config_text(text: str, *, config_file: Path, data_dir: Path) -> Config:
    """Parse config TOML; unknown keys are errors so typos do not pass silently."""
    try:
        raw = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer over Python's 4300 digits
        raise ConfigError(f"{config_file} is not valid TOML: {exc}") from None
    cfg = Config(config_file=config_file, data_dir=data_dir)
    known = {"data_dir", "profile", "log_level", "network", "notifications", "telemetry"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{config_file}: unknown setting(s) {', '.join(sorted(unknown))}")
    if "data_dir" in raw:
        cfg = replace(cfg, data_dir=_parse_data_dir(_expect(raw["data_dir"], str, "data_dir")))
    if "profile" in raw:
        cfg = replace(cfg, profile=validate_profile_name(_expect(raw["profile"], str, "profile")))
    if "log_level" in raw:
        cfg = replace(cfg, log_level=_parse_log_level(_expect(raw["log_level"], str, "log_level")))
    if "network" in raw:
        cfg = replace(
            cfg, network=_parse_network(_expect(raw["network"], dict, "network"), "network")
        )
    if "notifications" in raw:
        notif = _expect(raw["notifications"], dict, "notifications")
        if set(notif) - {"bell", "desktop"}:
            raise ConfigError("notifications: the settings are 'bell' and 'desktop'")
        if "bell" in notif:
            cfg = replace(cfg, notify_bell=_expect(notif["bell"], bool, "notifications.bell"))
        if "desktop" in notif:
            cfg = replace(
                cfg, notify_desktop=_expect(notif["desktop"], bool, "notifications.desktop")
            )
    if "telemetry" in raw:
        table = _expect(raw["telemetry"], dict, "telemetry")
        try:
            cfg = replace(cfg, telemetry=parse_telemetry_table(table))
        except SettingsError as exc:
            raise ConfigError(str(exc)) from None
    return cfg


def _parse_data_dir(value: str) -> Path:
    if "\0" in value:
        raise ConfigError("data_dir cannot contain a NUL character")
    try:
        return Path(value).expanduser()
    except RuntimeError:  # "~name" for a user this system does not know
        raise ConfigError(
            f"data_dir {value!r} names a home directory that does not exist"
        ) from None


def _parse_log_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
    return level


def load_config(
    *,
    config_file: Path | None = None,
    data_dir: Path | None = None,
    profile: str | None = None,
    log_level: str | None = None,
) -> Config:
    """Build the effective config. Command-line values (the arguments) win over the file."""
    path = config_file or default_config_file()
    base_data = default_data_dir()
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not UTF-8 text") from None
        cfg = parse_config_text(text, config_file=path, data_dir=base_data)
    elif config_file is not None:
        raise ConfigError(f"config file {path} does not exist")
    else:
        cfg = Config(config_file=path, data_dir=base_data)
    if data_dir is not None:
        cfg = replace(cfg, data_dir=data_dir.expanduser())
    if profile is not None:
        cfg = replace(cfg, profile=validate_profile_name(profile))
    if log_level is not None:
        cfg = replace(cfg, log_level=_parse_log_level(log_level))
    return cfg


def passphrase_from_env(name: str = PASSPHRASE_ENV) -> str | None:
    """The unattended-unlock passphrase, if the environment provides one; a ConfigError
    when the variable is set but empty (a script that meant to set it)."""
    value = os.environ.get(name)
    if value is None:
        return None
    if not value:
        raise ConfigError(
            f"{name} is set but empty: set it to the passphrase, or unset it to type it"
        )
    return value
