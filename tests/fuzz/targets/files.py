"""Files chinwag reads from disk: fleet files and the config file (TOML), a profile's
key.json, the node key file and the API token file. Each input is written to a real file
and read back through the loader the program uses."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from chat.api.auth import TOKEN_FILE_NAME, TokenFileError, load_or_create_token
from chat.config import load_config
from chat.errors import ConfigError
from chat.fleet import MAX_CLUSTER, MAX_SHARD, FleetError, load_fleet, peer_id_of
from chat.waku.host import NodeKeyError, load_or_create_node_key
from fuzz.contract import Target, check, peer_id, round_trip, scratch_dir
from storage.errors import DatabaseCorrupt
from storage.kdf import KdfParams
from storage.keyfile import KeyFile, read_key_file, write_key_file

PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@cache
def place(name: str) -> Path:
    return scratch_dir("files") / name


def _written(name: str, data: bytes) -> Path:
    path = place(name)
    path.write_bytes(data)
    return path


def fuzz_fleet(data: bytes) -> None:
    try:
        fleet = load_fleet(_written("fleet.toml", data))
    except FleetError:
        return
    check(0 <= fleet.cluster_id <= MAX_CLUSTER, f"cluster {fleet.cluster_id}")
    check(all(0 <= s <= MAX_SHARD for s in fleet.shards), f"shards {fleet.shards}")
    check(bool(fleet.all_peers()), "a fleet without nodes")
    for addr in fleet.all_peers():
        check(peer_id_of(addr) is not None, f"{addr} has no peer id")


def _fleet_seeds() -> Iterable[bytes]:
    yield (
        'name = "example"\ncluster_id = 42\nshards = [0, 1]\n'
        f'bootstrap = ["/dns4/boot.example.org/tcp/60000/p2p/{peer_id(1)}"]\n\n'
        f'[services]\nstore = ["/ip4/192.0.2.10/tcp/60000/p2p/{peer_id(1)}"]\n'
        f'filter = []\nlightpush = ["/ip6/::1/tcp/1/ws/p2p/{peer_id(1)}"]\n'
    ).encode()
    yield f'cluster_id = 1\nservices.store = ["/ip4/10.0.0.1/tcp/1/p2p/{peer_id(1)}"]\n'.encode()


def fuzz_config(data: bytes) -> None:
    try:
        config = load_config(config_file=_written("config.toml", data))
    except ConfigError:
        return
    check(PROFILE_NAME.fullmatch(config.profile) is not None, f"profile {config.profile!r}")
    check(0 <= config.network.cluster_id <= MAX_CLUSTER, "cluster out of range")
    check(all(0 <= s <= MAX_SHARD for s in config.network.shards), "shard out of range")


def _config_seeds() -> Iterable[bytes]:
    yield (
        'data_dir = "~/chinwag-data"\nprofile = "work"\nlog_level = "debug"\n\n'
        "[network]\ncluster_id = 42\nshards = [0, 1]\n"
        f'peers = ["/ip4/127.0.0.1/tcp/60000/p2p/{peer_id(1)}"]\n\n'
        "[notifications]\nbell = false\ndesktop = true\n"
    ).encode()
    yield b'profile = "default"\n'


def fuzz_key_file(data: bytes) -> None:
    try:
        key_file = read_key_file(_written("key.json", data))
    except DatabaseCorrupt:
        return
    check(bool(key_file.database) and "/" not in key_file.database, "bad database name")
    write_key_file(place("key-again.json"), key_file)
    round_trip(key_file, read_key_file(place("key-again.json")))


def _key_file_seeds() -> Iterable[bytes]:
    key_file = KeyFile(KdfParams.fresh(opslimit=2, memlimit=65536), b"\x01" * 32, "profile.db")
    yield key_file.to_json().encode()
    yield json.dumps(json.loads(key_file.to_json())).encode()


def fuzz_node_key(data: bytes) -> None:
    path = _written("node.key", data)
    try:
        load_or_create_node_key(path)
    except NodeKeyError:
        return


def fuzz_api_token(data: bytes) -> None:
    directory = place("token-dir")
    directory.mkdir(exist_ok=True)
    (directory / TOKEN_FILE_NAME).write_bytes(data)
    try:
        token = load_or_create_token(directory)
    except TokenFileError:
        return
    check(re.fullmatch(r"[A-Za-z0-9_-]{43}", token) is not None, f"token {token!r}")
    round_trip(token, load_or_create_token(directory))


TARGETS = (
    Target(
        name="fleet_file",
        decoder="chat.fleet.load_fleet (TOML)",
        contract="FleetError only; cluster, shards and addresses within their rules",
        fuzz=fuzz_fleet,
        seeds=_fleet_seeds,
        max_len=16384,
        tokens=(b"cluster_id", b"shards", b"bootstrap", b"[services]", b"/p2p/", b"/ip4/"),
    ),
    Target(
        name="config_file",
        decoder="chat.config.load_config (TOML)",
        contract="ConfigError only; the profile name is a valid one; network values in range",
        fuzz=fuzz_config,
        seeds=_config_seeds,
        max_len=16384,
        tokens=(b"[network]", b"data_dir", b"profile", b"log_level", b"cluster_id"),
    ),
    Target(
        name="key_file",
        decoder="storage.keyfile.read_key_file (key.json)",
        contract="DatabaseCorrupt only; what it reads, it writes and reads back the same",
        fuzz=fuzz_key_file,
        seeds=_key_file_seeds,
    ),
    Target(
        name="node_key_file",
        decoder="chat.waku.host.load_or_create_node_key",
        contract="NodeKeyError only",
        fuzz=fuzz_node_key,
        seeds=lambda: [(b"\x11" * 32).hex().encode() + b"\n"],
        max_len=256,
    ),
    Target(
        name="api_token_file",
        decoder="chat.api.auth.load_or_create_token",
        contract="TokenFileError only; a token of the right shape, stable across reads",
        fuzz=fuzz_api_token,
        seeds=lambda: [b"t" * 43 + b"\n"],
        max_len=512,
    ),
)
