"""Numbered schema migrations: `NNNN_name.sql`, applied in order, one transaction each.

`PRAGMA user_version` records the last one applied. Never edit a shipped migration; add one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from storage.errors import SchemaTooNew

_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def all_migrations() -> list[Migration]:
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations are not numbered 1..n: {[m.name for m in found]}")
    return found


LATEST_VERSION = len(all_migrations())


def migrate(conn: Any, target: int | None = None) -> int:
    """Bring the schema to `target` (default: latest); returns the version reached."""
    target = LATEST_VERSION if target is None else target
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > LATEST_VERSION:
        raise SchemaTooNew(current, LATEST_VERSION)
    for migration in all_migrations():
        if current < migration.version <= target:
            # BEGIN/COMMIT inside the script: executescript must not split the migration.
            script = (
                f"BEGIN IMMEDIATE;\n{migration.sql}\n"
                f"PRAGMA user_version = {migration.version};\nCOMMIT;"
            )
            try:
                conn.executescript(script)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            current = migration.version
    return current
