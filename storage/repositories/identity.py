"""The profile's vodozemac Olm account, stored pickled (encrypted with a derived key)."""

from __future__ import annotations

import vodozemac

from storage.db import Database
from storage.errors import DatabaseCorrupt


class IdentityRepository:
    def __init__(self, db: Database, pickle_key: bytes) -> None:
        self._db = db
        self._pickle_key = pickle_key

    def save(self, account: vodozemac.Account, *, chat_key: str, now: int) -> None:
        pickle = account.pickle(self._pickle_key)
        self._db.execute(
            "INSERT INTO identity (id, chat_key, account_pickle, created_at, updated_at) "
            "VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "chat_key = excluded.chat_key, account_pickle = excluded.account_pickle, "
            "updated_at = excluded.updated_at",
            (chat_key, pickle, now, now),
        )

    def load(self) -> vodozemac.Account | None:
        row = self._db.fetchone("SELECT account_pickle FROM identity WHERE id = 1")
        if row is None:
            return None
        try:
            return vodozemac.Account.from_pickle(row[0], self._pickle_key)
        except vodozemac.PickleException as exc:
            raise DatabaseCorrupt("the stored identity", str(exc)) from None

    def chat_key(self) -> str | None:
        value = self._db.scalar("SELECT chat_key FROM identity WHERE id = 1")
        return None if value is None else str(value)
