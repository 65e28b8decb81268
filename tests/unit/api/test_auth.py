"""The API token file and the bearer check, on real files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chat.api.auth import TOKEN_FILE_NAME, TokenFileError, bearer_matches, load_or_create_token


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_token_is_created_private_and_reused(tmp_path: Path) -> None:
    token = load_or_create_token(tmp_path)
    path = tmp_path / TOKEN_FILE_NAME
    assert _mode(path) == 0o600
    assert len(token) == 43 and token.isascii()
    assert path.read_text() == f"{token}\n"
    assert load_or_create_token(tmp_path) == token
    assert [p.name for p in tmp_path.iterdir()] == [TOKEN_FILE_NAME]  # no temp file left


def test_each_profile_gets_its_own_token(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert load_or_create_token(tmp_path / "a") != load_or_create_token(tmp_path / "b")


def test_loose_permissions_are_tightened_and_the_token_kept(tmp_path: Path) -> None:
    token = load_or_create_token(tmp_path)
    path = tmp_path / TOKEN_FILE_NAME
    path.chmod(0o644)
    assert load_or_create_token(tmp_path) == token
    assert _mode(path) == 0o600


@pytest.mark.parametrize("content", ["", "short\n", "x" * 43 + "!\n", "é" * 43])
def test_a_damaged_token_file_is_replaced(tmp_path: Path, content: str) -> None:
    path = tmp_path / TOKEN_FILE_NAME
    path.write_text(content)
    token = load_or_create_token(tmp_path)
    assert len(token) == 43 and path.read_text() == f"{token}\n"
    assert _mode(path) == 0o600


def test_a_symlinked_token_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("A" * 43)
    (tmp_path / TOKEN_FILE_NAME).symlink_to(target)
    with pytest.raises(TokenFileError, match="cannot be read"):
        load_or_create_token(tmp_path)


def test_a_directory_in_its_place_is_refused(tmp_path: Path) -> None:
    (tmp_path / TOKEN_FILE_NAME).mkdir()
    with pytest.raises(TokenFileError):
        load_or_create_token(tmp_path)


def test_a_missing_directory_is_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="cannot be written"):
        load_or_create_token(tmp_path / "nope")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_an_unwritable_directory_is_a_sentence(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(TokenFileError, match="cannot be written"):
            load_or_create_token(tmp_path)
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (b"Bearer tok-en_1", True),
        (b"bearer tok-en_1", True),
        (b"BEARER  tok-en_1 ", True),
        (b"Bearer tok-en_2", False),
        (b"Bearer tok-en_", False),
        (b"Bearer tok-en_11", False),
        (b"Basic tok-en_1", False),
        (b"tok-en_1", False),
        (b"Bearer", False),
        (b"", False),
        (None, False),
        (b"Bearer \xfftok-en_1", False),
    ],
)
def test_bearer_matches(header: bytes | None, ok: bool) -> None:
    assert bearer_matches(header, "tok-en_1") is ok
