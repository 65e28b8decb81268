from __future__ import annotations

from pathlib import Path

import pytest

from chat.config import (
    DEFAULT_CLUSTER_ID,
    DEFAULT_SHARDS,
    load_config,
    parse_config_text,
    validate_profile_name,
)
from chat.errors import ConfigError


def test_defaults_follow_platformdirs(isolated_dirs: Path) -> None:
    cfg = load_config()
    assert cfg.config_file == isolated_dirs / "config" / "chinwag" / "config.toml"
    assert cfg.data_dir == isolated_dirs / "data" / "chinwag"
    assert cfg.profile == "default"
    assert cfg.profile_dir == cfg.data_dir / "profiles" / "default"
    assert cfg.network.cluster_id == DEFAULT_CLUSTER_ID
    assert cfg.network.shards == DEFAULT_SHARDS


def test_file_values_are_used_and_cli_values_win(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(
        'profile = "alice"\nlog_level = "debug"\ndata_dir = "%s"\n'
        "[network]\ncluster_id = 7\nshards = [3, 4]\npeers = ['/ip4/127.0.0.1/tcp/1']\n"
        "[notifications]\nbell = false\n" % (tmp_path / "d")
    )
    cfg = load_config(config_file=cfg_file)
    assert (cfg.profile, cfg.log_level, cfg.data_dir) == ("alice", "DEBUG", tmp_path / "d")
    assert cfg.network.cluster_id == 7 and cfg.network.shards == (3, 4)
    assert cfg.network.peers == ("/ip4/127.0.0.1/tcp/1",)
    assert cfg.notify_bell is False
    override = load_config(
        config_file=cfg_file, data_dir=tmp_path / "x", profile="bob", log_level="error"
    )
    assert (override.profile, override.log_level, override.data_dir) == (
        "bob",
        "ERROR",
        tmp_path / "x",
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("log_levl = 'INFO'", "unknown setting"),
        ("[network]\ncluster_id = 70000", "between 0 and 65535"),
        ("[network]\ncluster_id = true", "whole number"),
        ("[network]\nshards = [1024]", "0-1023"),
        ("[network]\npeers = [1]", "multiaddr strings"),
        ("[network]\nprotected_shards = [7]", "list of SHARD:PUBKEY strings"),
        ("[network]\nprotected_shards = '7:02ab'", "wrong type"),
        ("[network]\nmode = 'lite'", "mode must be one of relay, light"),
        ("[network]\nmode = 1", "wrong type"),
        ("log_level = 'LOUD'", "log level must be"),
        ("profile = '../etc'", "not a valid profile name"),
        ("this is = not toml =", "not valid TOML"),
    ],
)
def test_bad_config_is_a_plain_error(text: str, fragment: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_config_text(text, config_file=tmp_path / "c.toml", data_dir=tmp_path)


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(config_file=tmp_path / "nope.toml")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "-x", "x" * 65, "a b", "work\n"])
def test_profile_names_that_are_not_portable_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        validate_profile_name(name)


@pytest.mark.parametrize("name", ["default", "alice", "Bob_2", "work.laptop", "a" * 64])
def test_profile_names_accepted(name: str) -> None:
    assert validate_profile_name(name) == name


def test_desktop_notifications_are_off_unless_asked(tmp_path: Path) -> None:
    from chat.config import parse_config_text

    default = parse_config_text("", config_file=tmp_path / "c.toml", data_dir=tmp_path)
    assert default.notify_desktop is False and default.notify_bell is True
    asked = parse_config_text(
        "[notifications]\ndesktop = true\n", config_file=tmp_path / "c.toml", data_dir=tmp_path
    )
    assert asked.notify_desktop is True


# Each of these made load_config raise something other than ConfigError (a traceback instead
# of a sentence). The first two were found by the config_file fuzz target (tests/fuzz), the
# NUL and the 4301-digit integer (tomllib's bare ValueError) by reading the code for it.
@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'p\xb6\xb6rofile = "default"\n', "not UTF-8 text"),
        (b'data_dir = "~.chinwag-data"\nprofile =  true\n', "home directory that does not exist"),
        (b'data_dir = "~\\u0000x"\n', "NUL character"),
        (b"[network]\ncluster_id = " + b"9" * 4301 + b"\n", "not valid TOML"),
    ],
    ids=["not-utf8", "unknown-home", "nul", "4301-digits"],
)
def test_config_files_found_by_fuzzing_are_plain_errors(
    content: bytes, fragment: str, tmp_path: Path
) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=fragment):
        load_config(config_file=path)
