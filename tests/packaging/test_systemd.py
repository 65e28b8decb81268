"""The systemd unit for `chinwag node` (packaging/systemd/): systemd's own checker accepts it
without a warning, its sandbox scores as hardened by `systemd-analyze security`, and its
command line with the example node.env and config.toml is one `chinwag node` starts with."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from harness.packaging import (
    INSTALLED_CONFIG,
    SYSTEMD,
    UNIT,
    service_config_of,
    unit_command,
    unit_directives,
)
from harness.tmux import chinwag_script

INSTALLED_BINARY = "/usr/local/bin/chinwag"
MOST_EXPOSURE = 2.0
"""`systemd-analyze security` scores 0 (locked down) to 10 (unprotected); under 2 is "OK"."""

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def unit_with_binary(tmp_path: Path, binary: str) -> Path:
    """A copy of the unit whose ExecStart runs `binary` (systemd-analyze verify refuses a
    unit whose program does not exist, and this machine has none at /usr/local/bin)."""
    copy = tmp_path / UNIT.name
    text = UNIT.read_text().replace(f"ExecStart={INSTALLED_BINARY} ", f"ExecStart={binary} ")
    copy.write_text(text)
    return copy


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    unit = unit_with_binary(tmp_path, chinwag_script())
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # An unknown or misspelt directive is only a warning (exit 0): none may be printed.
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout + verified.stderr == ""


@needs_systemd_analyze
def test_the_unit_is_hardened(tmp_path: Path) -> None:
    unit = unit_with_binary(tmp_path, chinwag_script())
    scored = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", scored.stdout)
    assert match, scored.stdout + scored.stderr
    assert float(match.group(1)) <= MOST_EXPOSURE, scored.stdout


def test_the_unit_keeps_config_and_data_in_the_standard_places() -> None:
    unit = unit_directives()
    assert unit["DynamicUser"] == ["yes"]
    assert unit["StateDirectory"] == ["chinwag"]  # /var/lib/chinwag, its only writable place
    assert unit["ConfigurationDirectory"] == ["chinwag"]  # /etc/chinwag
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["PrivateTmp"] == ["yes"]  # the one-file binary unpacks itself there
    assert unit["MemoryDenyWriteExecute"] == ["yes"]  # tests/packaging/test_binary.py runs so
    [exec_start] = unit["ExecStart"]
    words = shlex.split(exec_start)
    assert words[0] == INSTALLED_BINARY
    assert words[words.index("--config") + 1] == "/etc/chinwag/config.toml"
    assert words[words.index("--data-dir") + 1] == "/var/lib/chinwag"


def test_the_units_command_line_is_a_service_node_chinwag_starts(tmp_path: Path) -> None:
    words = unit_command()
    assert words[0] == INSTALLED_BINARY
    service, config = service_config_of(words[1:], INSTALLED_CONFIG, tmp_path / "state")
    assert config.config_file == SYSTEMD / "config.toml"
    assert service.store is not None and service.filter and service.lightpush
    assert service.store.archive_path == tmp_path / "state" / "node" / "archive.sqlite"
    assert service.metrics == ("127.0.0.1", 8008)
    assert service.node.cluster_id == 42
