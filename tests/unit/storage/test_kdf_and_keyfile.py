from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage import kdf
from storage.errors import DatabaseCorrupt, EmptyPassphrase
from storage.kdf import KdfParams, derive_database_key, key_check, matches_check, subkey
from storage.keyfile import KeyFile, read_key_file, write_key_file


def test_tuned_defaults_are_the_measured_ones() -> None:
    # docs/storage.md: opslimit 5, 256 MiB took ~0.5 s per unlock on the reference machine.
    assert (kdf.DEFAULT_OPSLIMIT, kdf.DEFAULT_MEMLIMIT) == (5, 256 * 1024 * 1024)
    fresh = KdfParams.fresh()
    assert (fresh.opslimit, fresh.memlimit) == (kdf.DEFAULT_OPSLIMIT, kdf.DEFAULT_MEMLIMIT)
    assert fresh.valid() and len(fresh.salt) == kdf.SALT_BYTES
    assert KdfParams.fresh().salt != fresh.salt


def test_key_is_deterministic_per_salt_and_passphrase() -> None:
    params = KdfParams.fresh(opslimit=1, memlimit=8192)
    key = derive_database_key("pass", params)
    assert len(key) == 32
    assert derive_database_key("pass", params) == key
    assert derive_database_key("pass2", params) != key
    other_salt = KdfParams.fresh(opslimit=1, memlimit=8192)
    assert derive_database_key("pass", other_salt) != key
    assert matches_check(key, key_check(key))
    assert not matches_check(derive_database_key("pass2", params), key_check(key))


def test_empty_passphrase_is_its_own_error() -> None:
    with pytest.raises(EmptyPassphrase, match="empty"):
        derive_database_key("", KdfParams.fresh(opslimit=1, memlimit=8192))


def test_subkeys_are_independent_of_each_other_and_of_the_check() -> None:
    key = bytes(range(32))
    keys = {subkey(key, "a"), subkey(key, "b"), key_check(key), key}
    assert len(keys) == 4


def test_key_file_round_trip(tmp_path: Path) -> None:
    kf = KeyFile(kdf=KdfParams.fresh(), check=bytes(32), database="chinwag-abc.db")
    write_key_file(tmp_path / "key.json", kf)
    assert read_key_file(tmp_path / "key.json") == kf
    assert (tmp_path / "key.json").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "key.json.tmp").exists()


@pytest.mark.parametrize(
    "change",
    [
        {"opslimit": 10_000},
        {"memlimit": 1 << 40},
        {"salt": "00"},
        {"check": "zz"},
        {"database": "../elsewhere.db"},
        {"version": 99},
        {"opslimit": "5"},
    ],
)
def test_tampered_key_file_is_reported_as_damaged(
    tmp_path: Path, change: dict[str, object]
) -> None:
    kf = KeyFile(kdf=KdfParams.fresh(), check=bytes(32), database="chinwag-abc.db")
    data = json.loads(kf.to_json())
    data.update(change)
    (tmp_path / "key.json").write_text(json.dumps(data))
    with pytest.raises(DatabaseCorrupt, match="key file"):
        read_key_file(tmp_path / "key.json")


def test_oversized_or_garbage_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_bytes(b"{" * 10_000)
    with pytest.raises(DatabaseCorrupt, match="too large"):
        read_key_file(path)
    path.write_bytes(b"\xff\x00 not json")
    with pytest.raises(DatabaseCorrupt):
        read_key_file(path)
