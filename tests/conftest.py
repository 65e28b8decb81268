"""Shared fixtures: every test gets its own config and data directories, never the user's;
storage tests get real SQLCipher files with a cheap KDF. Helpers shared across folders are
fixtures, or plain modules under tests/harness (on sys.path through pytest's `pythonpath`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.repositories.conversations import Conversation
from storage.store import Store


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point platformdirs (XDG) at a temp dir so no test touches the real home."""
    home = tmp_path / "home"
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("CHINWAG_PASSPHRASE", raising=False)
    return home


PASSPHRASE = "correct horse battery staple"


def _cheap_kdf() -> KdfParams:
    """Argon2id's minimum cost: parameters are stored per profile, so only speed changes."""
    return KdfParams.fresh(opslimit=1, memlimit=8192)


def _conversation(cid: str = "c1", now: int = 1_000) -> Conversation:
    return Conversation(
        id=cid,
        kind="direct",
        title=f"chat {cid}",
        pubsub_topic="/waku/2/rs/42/0",
        content_topic=f"/chinwag/1/{cid}/proto",
        created_at=now,
        last_activity_at=now,
    )


@pytest.fixture
def passphrase() -> str:
    return PASSPHRASE


@pytest.fixture
def cheap_kdf() -> Callable[[], KdfParams]:
    return _cheap_kdf


@pytest.fixture
def make_conversation() -> Callable[..., Conversation]:
    return _conversation


@pytest.fixture
def profiles(tmp_path: Path) -> Profiles:
    return Profiles(tmp_path / "profiles")


@pytest.fixture
def store(profiles: Profiles) -> Iterator[Store]:
    s = profiles.create("alice", PASSPHRASE, display_name="Alice", now=1_000, kdf=_cheap_kdf())
    yield s
    s.close()


@pytest.fixture(scope="session")
def archive_postgres_database() -> Iterator[str | None]:
    """One PostgreSQL server and database for the session's archive tests (each test's
    archives are schemas in it); None when no server can start (the reason is kept)."""
    from harness import postgres

    try:
        server = postgres.start()
    except postgres.PostgresUnavailable as exc:
        _POSTGRES_UNAVAILABLE.append(str(exc))
        yield None
        return
    try:
        yield server.new_database()
    finally:
        server.stop()


_POSTGRES_UNAVAILABLE: list[str] = []


def _postgres_database(request: pytest.FixtureRequest) -> str:
    url: str | None = request.getfixturevalue("archive_postgres_database")
    if url is None:
        pytest.skip(f"PostgreSQL cannot be started here: {_POSTGRES_UNAVAILABLE[0]}")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_backend(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    """The store tests' archive backend: each test runs on SQLite and on PostgreSQL (a
    fresh database per archive name; skipped, with the reason, where no server starts)."""
    from harness.archives import ArchiveBackend

    if request.param == "sqlite":
        return ArchiveBackend("sqlite", tmp_path)
    return ArchiveBackend("postgresql", tmp_path, _postgres_database(request))


@pytest.fixture
def postgres_archive_backend(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    """PostgreSQL only (tests of its partitions and of sharing a database)."""
    from harness.archives import ArchiveBackend

    return ArchiveBackend("postgresql", tmp_path, _postgres_database(request))
