"""Contacts and contact requests (the request's state machine lives in chat/)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database, Row


@dataclass(frozen=True)
class Contact:
    chat_key: str
    identity_key: str
    display_name: str
    verified: bool
    blocked: bool
    added_at: int


@dataclass(frozen=True)
class ContactRequest:
    id: int
    chat_key: str
    direction: str
    state: str
    intro: str
    reason: str | None
    created_at: int
    updated_at: int
    expires_at: int | None


_CONTACT = "chat_key, identity_key, display_name, verified, blocked, added_at"
_REQUEST = "id, chat_key, direction, state, intro, reason, created_at, updated_at, expires_at"


def _contact(r: Row) -> Contact:
    return Contact(r[0], r[1], r[2], bool(r[3]), bool(r[4]), r[5])


class ContactRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def upsert(self, contact: Contact) -> None:
        self._db.execute(
            f"INSERT INTO contacts ({_CONTACT}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (chat_key) DO UPDATE SET identity_key = excluded.identity_key, "
            "display_name = excluded.display_name, verified = excluded.verified, "
            "blocked = excluded.blocked",
            (
                contact.chat_key,
                contact.identity_key,
                contact.display_name,
                int(contact.verified),
                int(contact.blocked),
                contact.added_at,
            ),
        )

    def get(self, chat_key: str) -> Contact | None:
        row = self._db.fetchone(f"SELECT {_CONTACT} FROM contacts WHERE chat_key = ?", (chat_key,))
        return None if row is None else _contact(row)

    def all(self) -> list[Contact]:
        rows = self._db.fetchall(f"SELECT {_CONTACT} FROM contacts ORDER BY display_name")
        return [_contact(r) for r in rows]

    def remove(self, chat_key: str) -> bool:
        return self._db.execute_count("DELETE FROM contacts WHERE chat_key = ?", (chat_key,)) > 0

    def add_request(
        self,
        *,
        chat_key: str,
        direction: str,
        state: str,
        now: int,
        intro: str = "",
        expires_at: int | None = None,
    ) -> int:
        return self._db.execute(
            "INSERT INTO contact_requests (chat_key, direction, state, intro, created_at, "
            "updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (chat_key, direction, state, intro, now, now, expires_at),
        )

    def set_request_state(
        self, request_id: int, state: str, *, now: int, reason: str | None = None
    ) -> None:
        self._db.execute(
            "UPDATE contact_requests SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
            (state, reason, now, request_id),
        )

    def request(self, request_id: int) -> ContactRequest | None:
        row = self._db.fetchone(
            f"SELECT {_REQUEST} FROM contact_requests WHERE id = ?", (request_id,)
        )
        return None if row is None else ContactRequest(*row)

    def requests(self, *, states: tuple[str, ...] | None = None) -> list[ContactRequest]:
        if states is None:
            rows = self._db.fetchall(f"SELECT {_REQUEST} FROM contact_requests ORDER BY id")
        else:
            marks = ", ".join("?" * len(states))
            rows = self._db.fetchall(
                f"SELECT {_REQUEST} FROM contact_requests WHERE state IN ({marks}) ORDER BY id",
                states,
            )
        return [ContactRequest(*r) for r in rows]
