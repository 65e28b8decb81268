from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.errors import (
    DatabaseCorrupt,
    EmptyPassphrase,
    ProfileExists,
    ProfileNotFound,
    SchemaTooNew,
    StorageError,
    WrongPassphrase,
)
from storage.kdf import KdfParams
from storage.migrations import LATEST_VERSION
from storage.profiles import Profiles

CheapKdf = Callable[[], KdfParams]


def _create(profiles: Profiles, kdf: CheapKdf, name: str = "alice", pw: str = "pw") -> Path:
    store = profiles.create(name, pw, display_name=name.title(), now=5, kdf=kdf())
    store.close()
    return profiles.files(name).database


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def test_create_list_unlock_delete(profiles: Profiles, cheap_kdf: CheapKdf) -> None:
    assert profiles.names() == []
    _create(profiles, cheap_kdf, "bob")
    _create(profiles, cheap_kdf, "alice")
    (profiles.profiles_dir / "not-a-profile").mkdir()
    assert profiles.names() == ["alice", "bob"]
    with pytest.raises(ProfileExists):
        profiles.create("alice", "pw", display_name="x", now=1, kdf=cheap_kdf())
    store = profiles.unlock("alice", "pw")
    assert store.meta.display_name == "Alice"
    store.close()
    assert profiles.directory("alice").stat().st_mode & 0o777 == 0o700
    profiles.delete("alice")
    assert profiles.names() == ["bob"]
    assert not profiles.directory("alice").exists()
    with pytest.raises(ProfileNotFound):
        profiles.delete("alice")
    with pytest.raises(ProfileNotFound):
        profiles.unlock("alice", "pw")


def test_wrong_passphrase_is_typed_and_changes_nothing(
    profiles: Profiles, cheap_kdf: CheapKdf, capfd: pytest.CaptureFixture[str]
) -> None:
    _create(profiles, cheap_kdf)
    before = _digest(profiles.directory("alice"))
    with pytest.raises(WrongPassphrase, match="wrong passphrase for profile 'alice'"):
        profiles.unlock("alice", "not it")
    with pytest.raises(EmptyPassphrase):
        profiles.unlock("alice", "")
    assert _digest(profiles.directory("alice")) == before
    assert profiles.unlock("alice", "pw").meta.display_name == "Alice"


def test_a_key_that_fails_the_check_is_never_handed_to_sqlcipher(
    profiles: Profiles, cheap_kdf: CheapKdf
) -> None:
    _create(profiles, cheap_kdf)
    with pytest.raises(WrongPassphrase):
        profiles.open("alice", bytes(32))


def _damage(db: Path, how: str) -> None:
    data = bytearray(db.read_bytes())
    if how == "truncated-mid-page":
        del data[-1000:]
    elif how == "truncated-whole-pages":
        del data[len(data) // 2 // 4096 * 4096 :]
    elif how == "page-1-flipped":
        data[200] ^= 0x01
    elif how == "empty":
        data = bytearray()
    db.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "how", ["truncated-mid-page", "truncated-whole-pages", "page-1-flipped", "empty"]
)
def test_damaged_database_is_its_own_error(
    profiles: Profiles, cheap_kdf: CheapKdf, how: str, capfd: pytest.CaptureFixture[str]
) -> None:
    db = _create(profiles, cheap_kdf)
    store = profiles.unlock("alice", "pw")
    store.db.checkpoint()
    store.close()
    _damage(db, how)
    with pytest.raises(DatabaseCorrupt, match="is damaged") as caught:
        profiles.unlock("alice", "pw")
    assert not isinstance(caught.value, WrongPassphrase)
    # SQLCipher's own "hmac check failed" lines must not reach the terminal.
    assert "hmac" not in capfd.readouterr().err


def test_missing_database_file(profiles: Profiles, cheap_kdf: CheapKdf) -> None:
    db = _create(profiles, cheap_kdf)
    db.unlink()
    with pytest.raises(DatabaseCorrupt, match="missing"):
        profiles.unlock("alice", "pw")
    assert not db.exists(), "opening must never create a fresh empty database in its place"


def test_newer_schema_version(profiles: Profiles, cheap_kdf: CheapKdf) -> None:
    _create(profiles, cheap_kdf)
    store = profiles.unlock("alice", "pw")
    store.db.execute(f"PRAGMA user_version = {LATEST_VERSION + 3}")
    store.close()
    with pytest.raises(SchemaTooNew, match="upgrade chinwag"):
        profiles.unlock("alice", "pw")


def test_each_failure_has_its_own_sentence() -> None:
    errors: list[StorageError] = [
        EmptyPassphrase(),
        WrongPassphrase("a"),
        DatabaseCorrupt("the database x", "the file is truncated"),
        SchemaTooNew(9, 2),
        ProfileNotFound("a"),
    ]
    sentences = {str(e) for e in errors}
    assert len(sentences) == len(errors)
    assert all(s.endswith(".") and "Traceback" not in s for s in sentences)


def test_change_passphrase_keeps_data_and_swaps_keys(
    profiles: Profiles, cheap_kdf: CheapKdf
) -> None:
    old_db = _create(profiles, cheap_kdf)
    store = profiles.unlock("alice", "pw")
    store.meta.set("marker", "kept")
    store.close()
    with pytest.raises(WrongPassphrase):
        profiles.change_passphrase("alice", "nope", "new", kdf=cheap_kdf())
    with pytest.raises(EmptyPassphrase):
        profiles.change_passphrase("alice", "pw", "", kdf=cheap_kdf())
    profiles.change_passphrase("alice", "pw", "new", kdf=cheap_kdf())
    assert not old_db.exists()
    with pytest.raises(WrongPassphrase):
        profiles.unlock("alice", "pw")
    store = profiles.unlock("alice", "new")
    assert store.meta.get("marker") == "kept"
    assert store.db.schema_version == LATEST_VERSION
    assert store.db.integrity_check() == ["ok"]
    store.close()


def test_leftovers_of_an_interrupted_change_are_removed_on_unlock(
    profiles: Profiles, cheap_kdf: CheapKdf
) -> None:
    db = _create(profiles, cheap_kdf)
    leftover = db.with_name("chinwag-000000000000.db")
    leftover.write_bytes(b"half an export")
    Path(f"{leftover}-journal").write_bytes(b"x")
    profiles.unlock("alice", "pw").close()
    assert not leftover.exists() and not Path(f"{leftover}-journal").exists()
    assert db.exists()


@pytest.mark.parametrize("name", ["", ".", "..", "../escape", "a/b", "a\\b"])
def test_a_profile_name_cannot_leave_the_profiles_dir(profiles: Profiles, name: str) -> None:
    with pytest.raises(ValueError):
        profiles.create(
            name, "pw", display_name="x", now=1, kdf=KdfParams.fresh(opslimit=1, memlimit=8192)
        )
    with pytest.raises(ValueError):
        profiles.unlock(name, "pw")
