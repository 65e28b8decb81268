"""Every collector test runs on SQLite and on a real PostgreSQL server (started once per
session by tests/harness/postgres.py; where it cannot start, the PostgreSQL half skips and
says why)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer | str]:
    try:
        server = postgres.start()
    except postgres.PostgresUnavailable as exc:
        yield f"PostgreSQL cannot be started here: {exc}"
        return
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'collector.sqlite'}"
    server = request.getfixturevalue("postgres_server")
    if isinstance(server, str):
        pytest.skip(server)
    return str(server.new_database())
