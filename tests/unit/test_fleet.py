"""Fleet files: parsing, errors that name their line, and merging with flags and config."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat.cli import build_parser
from chat.commands.node import node_config_from
from chat.config import DEFAULT_SHARDS, NetworkConfig, load_config
from chat.fleet import Fleet, FleetError, load_fleet, parse_fleet, peer_id_of, resolve_network
from chat.waku.host import load_or_create_node_key

A = "/ip4/192.0.2.10/tcp/60000/p2p/16Uiu2HAmCz7rRsmWvRr3cf1HmMEQDNYxMeuC8EsgHGdZTvXqSEzM"
B = "/dns4/store.example.org/tcp/60000/p2p/16Uiu2HAkyCxHMuVcXAGuKtH1GmzKHcCFuhYXqb7uGAiFwZ3LuYqj"
C = "/ip4/192.0.2.11/tcp/60000/p2p/16Uiu2HAm4v86W3bmT1BiH6oSPzcsSr24iDQpSN5Qa992BCjjwgrD"

EXAMPLE = f"""
name = "test fleet"
cluster_id = 7
shards = [1, 0, 1]
bootstrap = ["{A}"]

[services]
store = ["{B}", "{A}"]
filter = ["{C}"]
lightpush = []
"""


def test_a_full_fleet_file() -> None:
    fleet = parse_fleet(EXAMPLE)
    assert fleet == Fleet(
        cluster_id=7, shards=(0, 1), bootstrap=(A,), store=(B, A), filter=(C,), name="test fleet"
    )
    assert fleet.all_peers() == (A, B, C)
    assert fleet.service("store") == (B, A)
    assert peer_id_of(A) == A.rsplit("/", 1)[1]


def test_minimal_fleet_uses_default_shards(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(f'cluster_id = 42\nbootstrap = ["{A}"]\n')
    fleet = load_fleet(path)
    assert (fleet.cluster_id, fleet.shards, fleet.bootstrap) == (42, DEFAULT_SHARDS, (A,))


QUIC = f"/ip4/1.2.3.4/udp/1/quic-v1/p2p/{A.rsplit('/', 1)[1]}"
"""A transport chinwag does not dial."""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f'cluster_id = 1\nbootstrap = ["{A}"]\nbootstarp = []\n', "line 3: unknown setting"),
        (
            f'cluster_id = 1\n\n[services]\nstore = ["{A}"]\narchive = []\n',
            "line 5: unknown setting 'archive' in [services]",
        ),
        (f'bootstrap = ["{A}"]\n', "must say which cluster"),
        (f'cluster_id = 70000\nbootstrap = ["{A}"]\n', "line 1: cluster_id must be 0-65535"),
        (f'cluster_id = true\nbootstrap = ["{A}"]\n', "line 1: cluster_id must be a whole"),
        (f'cluster_id = 1\nshards = [2000]\nbootstrap = ["{A}"]\n', "line 2: shards must hold"),
        (f'cluster_id = 1\nshards = []\nbootstrap = ["{A}"]\n', "line 2: shards must be a non"),
        ('cluster_id = 1\nbootstrap = ["/ip4/1.2.3.4/tcp/1"]\n', "line 2: bootstrap: /ip4/1.2"),
        ('cluster_id = 1\nbootstrap = ["not an address"]\n', "is not a multiaddr"),
        (f'cluster_id = 1\nbootstrap = ["{QUIC}"]\n', f"line 2: bootstrap: {QUIC} is not an"),
        ("cluster_id = 1\nbootstrap = [3]\n", "must hold multiaddr strings"),
        ('cluster_id = 1\n[services]\nstore = "x"\n', "line 3: services.store must be a list"),
        ("cluster_id = 1\n", "names no node"),
        ("cluster_id = = 1\n", "is not valid TOML"),
    ],
)
def test_mistakes_are_sentences_with_the_line(text: str, message: str) -> None:
    with pytest.raises(FleetError) as caught:
        parse_fleet(text, source="f.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("f.toml")


def test_missing_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="does not exist"):
        load_fleet(tmp_path / "nope.toml")
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * 1_000_001)
    with pytest.raises(FleetError, match="over 1000000 bytes"):
        load_fleet(big)


def test_flags_win_over_fleet_over_config() -> None:
    fleet = parse_fleet(EXAMPLE)
    config = NetworkConfig(cluster_id=3, shards=(5,), peers=(C,))
    assert resolve_network(config).peers == (C,)  # no fleet, no flag: the config's peers
    merged = resolve_network(config, fleet)
    assert (merged.cluster_id, merged.shards, merged.peers) == (7, (0, 1), (A, B, C))
    assert (merged.store_peers, merged.filter_peers, merged.fleet_name) == (
        (B, A),
        (C,),
        "test fleet",
    )
    flagged = resolve_network(config, fleet, cluster_id=9, shards=[4], peers=[C])
    assert (flagged.cluster_id, flagged.shards, flagged.peers) == (9, (4,), (A, B, C))
    own = resolve_network(config, fleet, exclude_peer=peer_id_of(A))
    assert own.peers == (B, C) and own.store_peers == (B,)
    assert resolve_network(NetworkConfig()).lan_only


def test_node_command_takes_a_fleet(tmp_path: Path) -> None:
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text(EXAMPLE)
    key_file = tmp_path / "nodekey"
    argv = ["--data-dir", str(tmp_path), "node", "--listen", "/ip4/127.0.0.1/tcp/0",
            "--fleet", str(fleet_file), "--node-key", str(key_file), "--shard", "3"]  # fmt: skip
    args = build_parser().parse_args(argv)
    node_config = node_config_from(args, load_config(data_dir=tmp_path))
    assert (node_config.cluster_id, node_config.shards) == (7, (3,))
    assert node_config.static_peers == (A, B, C)
    assert node_config.key_pair.private_key.to_bytes() == (
        load_or_create_node_key(key_file).private_key.to_bytes()
    )


def test_an_integer_too_long_for_python_is_a_toml_error() -> None:
    """tomllib raises a bare ValueError (not TOMLDecodeError) for an integer over Python's
    4300-digit limit; found reading the code while writing the fleet_file fuzz target."""
    with pytest.raises(FleetError, match="is not valid TOML"):
        parse_fleet("cluster_id = " + "9" * 4301 + "\n", source="f.toml")
