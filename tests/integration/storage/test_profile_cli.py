"""`chinwag profile …` end to end: real files, real KDF, passphrases from env or prompt."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chat import unlock
from chat.cli import main
from chat.logs import forget_secrets
from chat.session import profile_lock
from storage import kdf
from storage.kdf import KdfParams
from storage.migrations import LATEST_VERSION
from storage.profiles import Profiles


@pytest.fixture(autouse=True)
def _no_leftover_secrets() -> Iterator[None]:
    yield
    forget_secrets()


def _cli(data_dir: Path, *args: str) -> int:
    return main(["--data-dir", str(data_dir), "profile", *args])


def _prompts(monkeypatch: pytest.MonkeyPatch, *answers: str) -> list[str]:
    """Feed the terminal prompts; returns the prompts that were shown."""
    shown: list[str] = []
    queue = list(answers)

    def fake_getpass(prompt: str = "") -> str:
        shown.append(prompt)
        return queue.pop(0)

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    # The answers are what someone types at a terminal: chinwag asks only when there is one
    # (without, it says so: tests/integration/test_cli_sentences.py).
    monkeypatch.setattr(unlock, "has_terminal", lambda: True)
    return shown


def test_cli_create_uses_the_tuned_kdf_and_show_reports_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = _prompts(monkeypatch, "s3cret pass", "s3cret pass", "s3cret pass")
    assert _cli(tmp_path, "create", "alice", "--display-name", "Alice Liddell") == 0
    assert len(shown) == 2  # typed twice
    key_file = json.loads((tmp_path / "profiles" / "alice" / "key.json").read_text())
    assert (key_file["opslimit"], key_file["memlimit"]) == (
        kdf.DEFAULT_OPSLIMIT,
        kdf.DEFAULT_MEMLIMIT,
    )
    capsys.readouterr()
    assert _cli(tmp_path, "show", "alice") == 0
    out = capsys.readouterr().out
    assert "display name: Alice Liddell" in out
    assert "created:      20" in out and "UTC" in out
    assert "KiB, schema" in out
    assert _cli(tmp_path, "list") == 0
    assert capsys.readouterr().out.startswith("alice\t")


def test_prompt_errors_are_sentences(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cheap_kdf: Callable[[], KdfParams],
) -> None:
    _prompts(monkeypatch, "one", "two")
    assert _cli(tmp_path, "create", "alice", "--display-name", "A") == 2
    assert "the two passphrases differ" in capsys.readouterr().err
    assert Profiles(tmp_path / "profiles").names() == []
    _prompts(monkeypatch, "", "")
    assert _cli(tmp_path, "create", "alice", "--display-name", "A") == 2
    assert "the passphrase is empty" in capsys.readouterr().err
    Profiles(tmp_path / "profiles").create("bob", "pw", display_name="B", now=1, kdf=cheap_kdf())
    _prompts(monkeypatch, "")
    assert _cli(tmp_path, "show", "bob") == 2
    assert "the passphrase is empty" in capsys.readouterr().err
    assert _cli(tmp_path, "create", "bob", "--display-name", "B") == 2
    assert "already exists" in capsys.readouterr().err
    assert _cli(tmp_path, "show", "nobody") == 2
    assert "no profile named 'nobody'" in capsys.readouterr().err


def _exe() -> str:
    chinwag = Path(sys.executable).with_name("chinwag")
    found = str(chinwag) if chinwag.exists() else shutil.which("chinwag")
    assert found
    return found


def _run(
    data_dir: Path, *args: str, passphrase: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_exe(), "--data-dir", str(data_dir), "profile", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "CHINWAG_PASSPHRASE": passphrase, **env},
    )


def test_wrong_passphrase_and_newer_schema_in_a_real_process(
    tmp_path: Path, cheap_kdf: Callable[[], KdfParams]
) -> None:
    profiles = Profiles(tmp_path / "profiles")
    profiles.create("alice", "right", display_name="A", now=1, kdf=cheap_kdf()).close()
    out = _run(tmp_path, "show", "alice", passphrase="wrong")
    assert (out.returncode, out.stderr) == (2, "chinwag: wrong passphrase for profile 'alice'.\n")
    with profiles.unlock("alice", "right") as store:
        store.db.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    out = _run(tmp_path, "show", "alice", passphrase="right")
    assert out.returncode == 2
    assert out.stderr.startswith("chinwag: this profile was written by a newer chinwag")
    assert out.stderr.count("\n") == 1


def test_passwd_then_delete(
    tmp_path: Path,
    cheap_kdf: Callable[[], KdfParams],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    profiles = Profiles(tmp_path / "profiles")
    profiles.create("alice", "old", display_name="A", now=1, kdf=cheap_kdf()).close()
    out = _run(tmp_path, "passwd", "alice", passphrase="old", CHINWAG_NEW_PASSPHRASE="new pass")
    assert out.returncode == 0, out.stderr
    key_file = profiles.files("alice").key_file
    assert (key_file.kdf.opslimit, key_file.kdf.memlimit) == (
        kdf.DEFAULT_OPSLIMIT,
        kdf.DEFAULT_MEMLIMIT,
    )
    assert _run(tmp_path, "show", "alice", passphrase="old").returncode == 2
    assert _run(tmp_path, "show", "alice", passphrase="new pass").returncode == 0

    out = _run(tmp_path, "delete", "alice", passphrase="")
    assert out.returncode == 2 and "add --yes" in out.stderr
    with profile_lock(profiles.directory("alice"), "alice"):  # open in another chinwag
        out = _run(tmp_path, "delete", "alice", "--yes", passphrase="")
        assert out.returncode == 2 and "in use by another chinwag process" in out.stderr
        out = _run(tmp_path, "passwd", "alice", passphrase="new pass", CHINWAG_NEW_PASSPHRASE="x")
        assert out.returncode == 2 and "in use by another chinwag process" in out.stderr
    assert profiles.exists("alice")
    assert _run(tmp_path, "show", "alice", passphrase="new pass").returncode == 0
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt="": "not-alice")
    assert _cli(tmp_path, "delete", "alice") == 1
    assert profiles.exists("alice")
    monkeypatch.setattr("builtins.input", lambda prompt="": "alice")
    assert _cli(tmp_path, "delete", "alice") == 0
    assert not profiles.exists("alice")
    assert "deleted profile 'alice'" in capsys.readouterr().out


def test_list_shows_a_damaged_profile_without_hiding_the_others(
    tmp_path: Path, cheap_kdf: Callable[[], KdfParams], capsys: pytest.CaptureFixture[str]
) -> None:
    profiles = Profiles(tmp_path / "profiles")
    for name in ("alice", "bob"):
        profiles.create(name, "pw", display_name=name, now=1, kdf=cheap_kdf()).close()
    (profiles.directory("alice") / "key.json").write_text("{not json")
    assert _cli(tmp_path, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("alice\tunusable: the key file") and "damaged" in lines[0]
    assert lines[1].startswith("bob\t") and "KiB" in lines[1]
