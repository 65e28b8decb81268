"""`chinwag link`: the profile's identity is created with the profile and its link verifies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chat.cli import main
from chat.identity import ContactLink, Identity
from chat.identity_store import ensure_identity, load_identity
from chat.logs import forget_secrets
from chat.session import LINK_FILE_NAME, profile_lock
from storage.kdf import KdfParams
from storage.profiles import Profiles


@pytest.fixture(autouse=True)
def _no_leftover_secrets() -> Iterator[None]:
    yield
    forget_secrets()


def test_profile_create_makes_an_identity_and_link_prints_a_verifiable_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHINWAG_PASSPHRASE", "correct horse")
    base = ["--data-dir", str(tmp_path), "--profile", "alice"]
    assert main([*base, "profile", "create", "--display-name", "Alice"]) == 0
    created = capsys.readouterr().out
    assert main([*base, "link"]) == 0
    out = capsys.readouterr().out.splitlines()
    link = ContactLink.parse(out[-1])
    assert out[-2] == f"Alice  ({link.chat_key_text})"
    assert f"your chat key: {link.chat_key_text}" in created
    assert any("█" in line for line in out)  # the QR code came first

    profiles = Profiles(tmp_path / "profiles")
    with profiles.unlock("alice", "correct horse") as store:
        identity = load_identity(store)
    assert identity.chat_key == link.chat_key
    assert identity.fallback_key == link.fallback_key

    assert main([*base, "link", "--no-qr"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == out[-1]  # stable until rotation


def test_link_with_a_wrong_passphrase_is_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHINWAG_PASSPHRASE", "right one")
    base = ["--data-dir", str(tmp_path), "--profile", "bob"]
    assert main([*base, "profile", "create", "--display-name", "Bob"]) == 0
    monkeypatch.setenv("CHINWAG_PASSPHRASE", "wrong one")
    assert main([*base, "link"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chinwag: ") and "passphrase" in err and "Traceback" not in err
    monkeypatch.delenv("CHINWAG_PASSPHRASE")
    assert main(["--data-dir", str(tmp_path), "--profile", "nobody", "link"]) == 2


def test_link_rewrites_nothing_until_rotation_is_due_and_waits_for_no_other_process(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cheap_kdf: Callable[[], KdfParams],
) -> None:
    profiles = Profiles(tmp_path / "profiles")
    with profiles.create("carol", "pw", display_name="Carol", now=1, kdf=cheap_kdf()) as store:
        ensure_identity(store, 1.0)  # a fallback key from long ago: rotation is due
    monkeypatch.setenv("CHINWAG_PASSPHRASE", "pw")
    base = ["--data-dir", str(tmp_path), "--profile", "carol"]

    def account_row() -> tuple[object, ...]:
        with profiles.unlock("carol", "pw") as store:
            return tuple(store.db.fetchone("SELECT account_pickle, updated_at FROM identity"))

    assert main([*base, "link", "--no-qr"]) == 0
    rotated = account_row()
    assert main([*base, "link", "--no-qr"]) == 0  # rotated just now: nothing is written
    assert account_row() == rotated
    link = capsys.readouterr().out.splitlines()[-1]

    # Another chinwag uses it (the chat screen): the link it published is printed, with no
    # passphrase and nothing read from the database.
    monkeypatch.delenv("CHINWAG_PASSPHRASE")
    with profile_lock(profiles.directory("carol"), "carol"):
        assert main([*base, "link", "--no-qr"]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == link
        published = profiles.directory("carol") / LINK_FILE_NAME
        published.unlink()  # the process holding it never published one
        assert main([*base, "link"]) == 2
        assert capsys.readouterr().err == (
            "chinwag: profile 'carol' is in use by another chinwag process that has not "
            "published your contact link; press F4 in its chat screen, or quit it first.\n"
        )
        published.write_text(Identity.create("Carol", now=1.0).contact_link())  # weeks old
        assert main([*base, "link"]) == 2
        assert "published an out-of-date contact link" in capsys.readouterr().err
