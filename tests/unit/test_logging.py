from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat.logs import REDACTED, forget_secrets, register_secret, setup_logging


@pytest.fixture(autouse=True)
def _clean_secrets() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


def test_log_file_is_created_private_and_written(tmp_path: Path) -> None:
    log_file = tmp_path / "p" / "logs" / "chinwag.log"
    setup_logging(log_file, "INFO")
    logging.getLogger("chat.test").info("hello %s", "world")
    logging.getLogger("chat.test").debug("too detailed")
    for h in logging.getLogger().handlers:
        h.flush()
    text = log_file.read_text()
    assert "hello world" in text
    assert "too detailed" not in text
    assert log_file.stat().st_mode & 0o777 == 0o600


def test_passphrase_from_environment_never_reaches_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHINWAG_PASSPHRASE", "correct horse battery")
    log_file = tmp_path / "chinwag.log"
    setup_logging(log_file, "DEBUG")
    log = logging.getLogger("chat.test")
    log.warning("unlocking with %s", "correct horse battery")
    try:
        raise ValueError("bad key correct horse battery")
    except ValueError:
        log.exception("failed")
    for h in logging.getLogger().handlers:
        h.flush()
    text = log_file.read_text()
    assert "correct horse battery" not in text
    assert text.count(REDACTED) >= 2
    assert "correct horse battery" not in capsys.readouterr().err


def test_registered_key_bytes_are_redacted_in_hex(tmp_path: Path) -> None:
    key = bytes(range(32))
    register_secret(key)
    log_file = tmp_path / "chinwag.log"
    setup_logging(log_file, "INFO")
    logging.getLogger("chat.test").info("key=%s", key.hex())
    for h in logging.getLogger().handlers:
        h.flush()
    assert key.hex() not in log_file.read_text()


def test_second_setup_replaces_handlers_instead_of_duplicating(tmp_path: Path) -> None:
    setup_logging(tmp_path / "a.log", "INFO")
    before = len(logging.getLogger().handlers)
    setup_logging(tmp_path / "b.log", "INFO")
    assert len(logging.getLogger().handlers) == before
    logging.getLogger("chat.test").info("only in b")
    for h in logging.getLogger().handlers:
        h.flush()
    assert "only in b" in (tmp_path / "b.log").read_text()
    assert "only in b" not in (tmp_path / "a.log").read_text()


def test_redaction_leaves_the_record_intact_for_other_handlers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redacting rewrote the shared record (exception folded into the message, exc_info
    dropped), so every handler after ours, pytest's capture included, lost the exception."""
    register_secret("correct horse battery")
    log_file = tmp_path / "chinwag.log"
    setup_logging(log_file, "INFO")
    try:
        raise ValueError("bad key correct horse battery")
    except ValueError:
        logging.getLogger("chat.test").exception("failed")
    for h in logging.getLogger().handlers:
        h.flush()
    [record] = [r for r in caplog.records if r.name == "chat.test"]
    assert record.exc_info is not None and record.getMessage() == "failed"
    text = log_file.read_text()
    assert "correct horse battery" not in text
    assert "ValueError: bad key [redacted]" in text
