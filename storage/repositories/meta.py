"""Profile facts: display name and creation time."""

from __future__ import annotations

from storage.db import Database


class ProfileMetaRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str) -> str | None:
        value = self._db.scalar("SELECT value FROM profile_meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    def set(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO profile_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def display_name(self) -> str:
        return self.get("display_name") or ""

    @property
    def created_at(self) -> int:
        return int(self.get("created_at") or 0)
