"""Nothing readable on disk, nothing secret in the log."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import vodozemac

from chat.cli import main
from chat.logs import forget_secrets
from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.repositories.communities import Community, CommunityKey
from storage.repositories.contacts import Contact
from storage.repositories.conversations import Conversation

DISPLAY_NAME = "Quokka Zanzibar"
CONTACT_NAME = "Wombat Kilimanjaro"
MESSAGE = "the eagle lands at midnight behind the lighthouse"


def _all_bytes(directory: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def _assert_nothing_readable(files: dict[str, bytes], secrets: list[bytes]) -> None:
    assert files
    for name, data in files.items():
        assert b"SQLite format 3" not in data, name
        for secret in secrets:
            assert secret not in data, (name, secret[:20])


def test_database_files_hold_no_header_and_no_plaintext(
    tmp_path: Path,
    cheap_kdf: Callable[[], KdfParams],
    make_conversation: Callable[..., Conversation],
) -> None:
    profiles = Profiles(tmp_path / "profiles")
    store = profiles.create("alice", "pw", display_name=DISPLAY_NAME, now=1, kdf=cheap_kdf())
    key = profiles.derive_key("alice", "pw")
    account = vodozemac.Account()
    community_key = os.urandom(32)
    store.identity.save(account, chat_key="chatkey-zq", now=1)
    pickle = store.db.scalar("SELECT account_pickle FROM identity")
    store.contacts.upsert(Contact("ck", "ik", CONTACT_NAME, False, False, 1))
    store.conversations.add(make_conversation())
    for i in range(50):
        store.messages.add(
            conversation_id="c1",
            message_id=f"m{i}",
            sender="me",
            outgoing=True,
            body=f"{MESSAGE} {i}",
            sent_at=i,
            state="queued",
            now=i,
        )
    store.communities.upsert(Community("com", "Birders", "owner", b"desc", 64, "member", 1))
    store.communities.add_key("com", CommunityKey("content", 1, community_key, 1))
    secrets = [
        DISPLAY_NAME.encode(),
        CONTACT_NAME.encode(),
        MESSAGE.encode(),
        b"eagle lands",
        community_key,
        key,
        key.hex().encode(),
        pickle.encode(),
    ]
    # While open, recent commits sit in the WAL: it must be encrypted too.
    assert Path(f"{profiles.files('alice').database}-wal").stat().st_size > 0
    _assert_nothing_readable(_all_bytes(profiles.directory("alice")), secrets)
    store.close()
    _assert_nothing_readable(_all_bytes(profiles.directory("alice")), secrets)
    # And the check itself can fail: the same content in plain SQLite is caught.
    plain = tmp_path / "plain.db"
    import sqlite3

    conn = sqlite3.connect(plain)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (?)", (MESSAGE,))
    conn.commit()
    conn.close()
    with pytest.raises(AssertionError):
        _assert_nothing_readable({"plain": plain.read_bytes()}, secrets)


def test_nothing_secret_reaches_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cheap_kdf: Callable[[], KdfParams]
) -> None:
    data_dir = tmp_path / "data"
    passphrase = "a passphrase that must never be logged"
    profiles = Profiles(data_dir / "profiles")
    profiles.create("alice", passphrase, display_name=DISPLAY_NAME, now=1, kdf=cheap_kdf()).close()
    key = profiles.derive_key("alice", passphrase)
    monkeypatch.setenv("CHINWAG_PASSPHRASE", passphrase)
    forget_secrets()
    try:
        base = ["--data-dir", str(data_dir), "--log-level", "DEBUG", "profile"]
        assert main([*base, "show", "alice"]) == 0
        # Even code that tried to log the derived key would be redacted: the CLI registered it.
        logging.getLogger("test").error("key=%s raw=%r", key.hex(), key)
        monkeypatch.setenv("CHINWAG_PASSPHRASE", "wrong one")
        assert main([*base, "show", "alice"]) == 2
    finally:
        forget_secrets()
    logs = b"".join(_all_bytes(data_dir / "logs").values())
    assert b"key=[redacted]" in logs
    for secret in (passphrase.encode(), key.hex().encode(), b"wrong one"):
        assert secret not in logs


def test_sqlcipher_noise_never_reaches_the_terminal(
    tmp_path: Path, cheap_kdf: Callable[[], KdfParams]
) -> None:
    """A damaged page makes SQLCipher log "hmac check failed" to stderr unless we silence it."""
    data_dir = tmp_path / "data"
    profiles = Profiles(data_dir / "profiles")
    profiles.create("alice", "pw", display_name="A", now=1, kdf=cheap_kdf()).close()
    db = profiles.files("alice").database
    raw = bytearray(db.read_bytes())
    raw[300] ^= 0xFF
    db.write_bytes(bytes(raw))
    chinwag = Path(sys.executable).with_name("chinwag")
    exe = str(chinwag) if chinwag.exists() else shutil.which("chinwag")
    assert exe
    out = subprocess.run(
        [exe, "--data-dir", str(data_dir), "profile", "show", "alice"],
        capture_output=True,
        text=True,
        env={**os.environ, "CHINWAG_PASSPHRASE": "pw"},
    )
    assert out.returncode == 2
    assert out.stderr.startswith("chinwag: the database ") and "is damaged" in out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert "hmac" not in out.stderr and "Traceback" not in out.stderr
