"""Failures people meet before chinwag gets going are one sentence on stderr and exit code 2,
never a traceback: a data directory chinwag cannot write to, an empty CHINWAG_PASSPHRASE, no
passphrase and no terminal to type one at. The real `chinwag` runs as a subprocess.

A read-only data directory is made read-only for root too (CI runs as root, and root ignores
file modes): the test runs chinwag in a private mount namespace (`unshare -m`) in which the
data directory is bind-mounted onto itself read-only, so writes fail with EROFS exactly as on
a read-only disk, and nothing outside the namespace sees the mount. Where namespaces are not
allowed that case skips, saying why; a data directory under a regular file (ENOTDIR) always
runs and takes the same path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from chat.config import PASSPHRASE_ENV

PASSPHRASE = "correct horse battery staple"
READ_ONLY_MOUNT = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && '
COMMANDS = {
    "info": ["info"],
    "profile list": ["profile", "list"],
    "profile show": ["--profile", "alice", "profile", "show"],
    "link": ["--profile", "alice", "link"],
    "serve": ["--profile", "alice", "serve", "--api", "0"],
    "node": ["node", "--listen", "/ip4/127.0.0.1/tcp/0"],
    "tui": ["--profile", "alice"],
}
NEEDS_PASSPHRASE = {
    "link": ["--profile", "alice", "link"],
    "serve": ["--profile", "alice", "serve", "--api", "0"],
    "profile show": ["--profile", "alice", "profile", "show"],
    "profile passwd": ["--profile", "alice", "profile", "passwd"],
    "profile create": ["profile", "create", "bob", "--display-name", "Bob"],
}


def chinwag_command(data_dir: Path, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "chat.cli", "--data-dir", str(data_dir), *args]


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """No terminal: stdin from /dev/null, and a new session, so no controlling terminal."""
    return subprocess.run(
        command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
        start_new_session=True, timeout=60, check=False,
    )  # fmt: skip


def with_passphrase(value: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != PASSPHRASE_ENV}
    if value is not None:
        env[PASSPHRASE_ENV] = value
    return env


def assert_one_sentence(done: subprocess.CompletedProcess[str], starts: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"chinwag: {starts}"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # one line, and nothing else


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the profile 'alice' (and its logs folder) in it."""
    path = tmp_path_factory.mktemp("data")
    created = run(
        chinwag_command(path, ["profile", "create", "alice", "--display-name", "Alice"]),
        with_passphrase(PASSPHRASE),
    )
    assert created.returncode == 0, created.stderr
    return path


def read_only_namespace(data_dir: Path) -> list[str]:
    """A command prefix: in a private mount namespace, `data_dir` read-only (root included)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    prefix = ["unshare", "--mount", "sh", "-c", READ_ONLY_MOUNT + 'exec "$@"', "sh"]
    probe = subprocess.run(
        [*prefix, str(data_dir), "sh", "-c", 'touch "$0/probe"', str(data_dir)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"no private read-only mount here (needs root and mount namespaces): "
                    f"{probe.stderr.strip()}")  # fmt: skip
    assert not (data_dir / "probe").exists()
    return [*prefix, str(data_dir)]


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_read_only_data_directory_is_a_sentence(data_dir: Path, args: list[str]) -> None:
    done = run(
        [*read_only_namespace(data_dir), *chinwag_command(data_dir, args)],
        with_passphrase(PASSPHRASE),
    )
    assert_one_sentence(done, "cannot write the log file")
    assert "Read-only file system" in done.stderr and str(data_dir) in done.stderr


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_data_directory_under_a_file_is_a_sentence(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "a-file").write_text("")
    done = run(chinwag_command(tmp_path / "a-file" / "data", args), with_passphrase(PASSPHRASE))
    assert_one_sentence(done, "cannot write the log file")
    assert "Not a directory" in done.stderr


@pytest.mark.parametrize("args", NEEDS_PASSPHRASE.values(), ids=NEEDS_PASSPHRASE.keys())
def test_an_empty_passphrase_variable_is_a_sentence(data_dir: Path, args: list[str]) -> None:
    done = run(chinwag_command(data_dir, args), with_passphrase(""))
    assert_one_sentence(done, f"{PASSPHRASE_ENV} is set but empty")


@pytest.mark.parametrize("args", NEEDS_PASSPHRASE.values(), ids=NEEDS_PASSPHRASE.keys())
def test_no_passphrase_and_no_terminal_is_a_sentence(data_dir: Path, args: list[str]) -> None:
    done = run(chinwag_command(data_dir, args), with_passphrase(None))
    assert_one_sentence(done, f"no passphrase: set {PASSPHRASE_ENV}, or run chinwag in a terminal")


def test_no_new_passphrase_and_no_terminal_names_its_variable(data_dir: Path) -> None:
    args = ["--profile", "alice", "profile", "passwd"]
    done = run(chinwag_command(data_dir, args), with_passphrase(PASSPHRASE))
    assert_one_sentence(done, "no passphrase: set CHINWAG_NEW_PASSPHRASE, or run chinwag")
