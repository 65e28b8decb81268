"""`chinwag info`: version, where the config and data live, and which profiles exist.

It checks the config file's network settings as the chat UI and `serve` do
(`chat.session.messenger_settings`), so a mistake there is the same one sentence here,
before anything starts, and never a chat screen that cannot start."""

from __future__ import annotations

import argparse
import json
import platform

from chat import __version__
from chat.config import Config
from chat.session import messenger_settings

NAME = "info"
HELP = "show the version, config file, data directory and profiles"
USES_PROFILE = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def collect(config: Config) -> dict[str, object]:
    """What `info` prints; a UserError (one sentence) for a config the chat cannot run with."""
    settings = messenger_settings(config)
    profiles = (
        sorted(p.name for p in config.profiles_dir.iterdir() if p.is_dir())
        if config.profiles_dir.is_dir()
        else []
    )
    return {
        "version": __version__,
        "python": platform.python_version(),
        "config_file": str(config.config_file),
        "config_file_exists": config.config_file.exists(),
        "data_dir": str(config.data_dir),
        "profile": config.profile,
        "profile_dir": str(config.profile_dir),
        "profiles": profiles,
        "cluster_id": config.network.cluster_id,
        "shards": list(config.network.shards),
        "peers": list(settings.peers),
    }


def run(args: argparse.Namespace, config: Config) -> int:
    info = collect(config)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    exists = "" if info["config_file_exists"] else " (not created; defaults in use)"
    print(f"chinwag {info['version']} (Python {info['python']})")
    print(f"config file:  {info['config_file']}{exists}")
    print(f"data dir:     {info['data_dir']}")
    print(f"profile:      {info['profile']} ({info['profile_dir']})")
    profiles = info["profiles"]
    listed = ", ".join(profiles) if isinstance(profiles, list) and profiles else "(none yet)"
    print(f"profiles:     {listed}")
    print(f"network:      cluster {info['cluster_id']}, shards {info['shards']}")
    peers = info["peers"]
    listed = ", ".join(peers) if isinstance(peers, list) and peers else "(none: LAN discovery)"
    print(f"peers:        {listed}")
    return 0
