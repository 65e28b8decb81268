"""The persistent node key: created once with mode 0600, then loaded unchanged."""

from __future__ import annotations

import stat
import tracemalloc
from pathlib import Path

import pytest
from libp2p.crypto.keys import KeyType
from libp2p.peer.id import ID

from chat.waku.host import NodeKeyError, load_or_create_node_key, node_key_from_secret


def test_key_is_created_private_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "node" / "nodekey"
    first = load_or_create_node_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.private_key.get_type() is KeyType.Secp256k1
    again = load_or_create_node_key(path)
    assert ID.from_pubkey(again.public_key) == ID.from_pubkey(first.public_key)
    assert ID.from_pubkey(first.public_key).to_base58().startswith("16Uiu2")


def test_file_is_the_hex_secret_nwaku_takes(tmp_path: Path) -> None:
    path = tmp_path / "nodekey"
    secret = bytes.fromhex("5526a8990317c9b7b58d07843d270f9cd1d9aaee129294c1c478abf7261dd9e6")
    path.write_text(secret.hex() + "\n")
    key = load_or_create_node_key(path)
    assert key.private_key.to_bytes() == secret
    assert key.public_key.to_bytes().hex() == (
        "029c5fac802da41e07e6cdf51c3b9a6351ad5e65921527f2df5b7d59fd9b56ab02"
    )


@pytest.mark.parametrize("content", ["not hex", "abcd", "00" * 32, ""])
def test_bad_key_files_raise_a_user_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "nodekey"
    path.write_text(content)
    with pytest.raises(NodeKeyError):
        load_or_create_node_key(path)


def test_wrong_length_secret_is_rejected() -> None:
    with pytest.raises(NodeKeyError):
        node_key_from_secret(b"\x01" * 31)


def test_a_huge_node_key_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    """A damaged or wrong file at the key's path (here 64 MiB, sparse) is one sentence, and
    reading it allocates no more than a key file's worth."""
    path = tmp_path / "nodekey"
    with path.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(NodeKeyError, match="is over 1024 bytes"):
            load_or_create_node_key(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


def test_a_node_key_file_that_is_not_text_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "nodekey"
    path.write_bytes(b"\xff\xfe" + b"00" * 32)
    with pytest.raises(NodeKeyError) as raised:
        load_or_create_node_key(path)
    assert str(raised.value) == f"the node key file {path} is not ASCII text"
