"""Logging: one rotating log file per profile, and a filter that keeps secrets out of it.

Policy (enforced in review and by tests): log events, identifiers and sizes, never message
contents, keys or passphrases. As a second line of defence every registered secret is
redacted from every record before it is written anywhere.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import threading
from pathlib import Path

from chat.config import PASSPHRASE_ENV

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_LOG_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 5
REDACTED = "[redacted]"

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_installed_handlers: list[logging.Handler] = []


def register_secret(value: str | bytes) -> None:
    """Never let `value` (or its hex form, for bytes) reach a log line."""
    forms = [value.hex(), value.decode("latin-1")] if isinstance(value, bytes) else [value]
    with _secrets_lock:
        # Very short values would redact ordinary words; a passphrase that short is its own bug.
        _secrets.update(f for f in forms if len(f) >= 4)


def forget_secrets() -> None:
    with _secrets_lock:
        _secrets.clear()


class RedactingFormatter(logging.Formatter):
    """Renders a record, then replaces any registered secret in the text (traceback included)
    with a marker. A formatter, not a filter: the record is shared with every other handler
    (pytest's capture among them), so it must reach them unchanged, exception and all."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        with _secrets_lock:
            secrets = tuple(_secrets)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def setup_logging(log_file: Path, level: str = "INFO", *, stderr_level: str = "WARNING") -> None:
    """Send all chinwag logging to `log_file` (rotated) and warnings to stderr."""
    env_secret = os.environ.get(PASSPHRASE_ENV)
    if env_secret:
        register_secret(env_secret)
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = logging.getLogger()
    while _installed_handlers:  # a second setup (tests, profile switch) replaces the first
        old = _installed_handlers.pop()
        root.removeHandler(old)
        old.close()
    file_handler = logging.handlers.RotatingFileHandler(
        log_file, maxBytes=MAX_LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    file_handler.setFormatter(RedactingFormatter(LOG_FORMAT))
    file_handler.setLevel(level)
    stderr_handler = logging.StreamHandler()
    stderr_handler.setFormatter(RedactingFormatter("chinwag: %(levelname)s %(name)s: %(message)s"))
    stderr_handler.setLevel(stderr_level)
    for handler in (file_handler, stderr_handler):
        _installed_handlers.append(handler)
        root.addHandler(handler)
    root.setLevel(min(logging.getLevelName(level), logging.getLevelName(stderr_level)))
    # libp2p and friends are chatty at DEBUG; keep them at our level or above INFO.
    for noisy in ("libp2p", "multiaddr", "async_service", "hpack", "markdown_it"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.INFO))
    with contextlib.suppress(OSError):
        os.chmod(log_file, 0o600)
