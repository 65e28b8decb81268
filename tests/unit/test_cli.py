from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chat import __version__
from chat.cli import COMMANDS, main


def _console_script() -> str:
    """The installed `chinwag` entry point next to this interpreter."""
    candidate = Path(sys.executable).with_name("chinwag")
    found = str(candidate) if candidate.exists() else shutil.which("chinwag")
    assert found, "the chinwag console script is not installed in this environment"
    return found


def test_version_from_installed_console_script() -> None:
    out = subprocess.run(
        [_console_script(), "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"chinwag {__version__}"
    assert __version__ != "0.0.0+source"


def test_help_lists_exactly_the_working_commands() -> None:
    out = subprocess.run([_console_script(), "--help"], capture_output=True, text=True, check=True)
    for module in COMMANDS:
        assert module.NAME in out.stdout
    for global_option in ("--data-dir", "--profile", "--log-level", "--version"):
        assert global_option in out.stdout


def test_info_json_honours_data_dir_and_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--data-dir", str(tmp_path / "d"), "--profile", "alice", "info", "--json"])
    assert code == 0
    info = json.loads(capsys.readouterr().out)
    assert info["data_dir"] == str(tmp_path / "d")
    assert info["profile_dir"] == str(tmp_path / "d" / "profiles" / "alice")
    assert info["version"] == __version__
    # `info` is not about one profile: it logs to the data dir and creates no profile dir.
    assert (tmp_path / "d" / "logs" / "chinwag.log").exists()
    assert not (tmp_path / "d" / "profiles" / "alice").exists()


def test_bad_profile_name_is_a_sentence_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    out = subprocess.run(
        [_console_script(), "--profile", "../x", "info"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 2
    assert out.stderr.startswith("chinwag: '../x' is not a valid profile name")
    assert "Traceback" not in out.stderr


def test_broken_config_file_is_reported_plainly(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[network\n")
    out = subprocess.run(
        [_console_script(), "--config", str(cfg), "info"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "is not valid TOML" in out.stderr
    assert "Traceback" not in out.stderr


def test_help_and_other_commands_import_neither_textual_nor_libp2p() -> None:
    probe = (
        "import sys; from chat.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('textual', 'libp2p', 'trio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_command_starts_the_tui_which_needs_a_terminal(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    out = subprocess.run(
        [_console_script()], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )
    assert out.returncode == 2
    assert out.stderr.startswith("chinwag: the chat UI needs a terminal")
