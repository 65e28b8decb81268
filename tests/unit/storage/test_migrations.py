from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage import migrations
from storage.db import open_database
from storage.errors import SchemaTooNew
from storage.migrations import LATEST_VERSION, all_migrations

KEY = bytes(range(32))


def test_migrations_are_numbered_without_gaps_and_there_are_several() -> None:
    versions = [m.version for m in all_migrations()]
    assert versions == list(range(1, LATEST_VERSION + 1))
    assert LATEST_VERSION >= 2


def _seed(path: Path, version: int) -> None:
    """A database at `version` holding data that every later version must keep."""
    db = open_database(path, KEY, create=True, target_version=version)
    assert db.schema_version == version
    if version >= 1:
        db.execute(
            "INSERT INTO conversations (id, kind, title, pubsub_topic, content_topic, created_at, "
            "last_activity_at) VALUES ('c1', 'direct', 'Bob', 'p', 'c', 1, 1)"
        )
        db.execute(
            "INSERT INTO messages (conversation_id, message_id, sender, outgoing, body, sent_at, "
            "state) VALUES ('c1', 'm1', 'bob', 0, 'written before the upgrade', 1, 'received')"
        )
    db.close()


@pytest.mark.parametrize("version", range(LATEST_VERSION))
def test_upgrade_from_every_earlier_version(tmp_path: Path, version: int) -> None:
    path = tmp_path / f"v{version}.db"
    _seed(path, version)
    db = open_database(path, KEY)
    try:
        assert db.schema_version == LATEST_VERSION
        assert db.integrity_check() == ["ok"]
        if version >= 1:
            assert db.scalar("SELECT body FROM messages") == "written before the upgrade"
            # 0002 indexes the messages that existed before it ran.
            hits = db.fetchall(
                "SELECT rowid FROM message_search WHERE message_search MATCH 'upgrade'"
            )
            assert len(hits) == 1
    finally:
        db.close()


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = open_database(path, KEY, create=True)
    db.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(SchemaTooNew, match="newer chinwag") as caught:
        open_database(path, KEY)
    assert caught.value.found == LATEST_VERSION + 1
    assert path.read_bytes() == before


def test_a_failing_migration_rolls_back_completely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    open_database(path, KEY, create=True, target_version=1).close()
    broken = migrations.Migration(2, "0002_broken.sql", "CREATE TABLE half (x);\nNOT SQL;")
    monkeypatch.setattr(migrations, "all_migrations", lambda: [all_migrations()[0], broken])
    with pytest.raises(Exception, match="syntax error"):
        open_database(path, KEY)
    monkeypatch.undo()
    db = open_database(path, KEY, target_version=1)
    try:
        assert db.schema_version == 1
        assert db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'half'") == 0
    finally:
        db.close()
    assert os.path.getsize(path) > 0
