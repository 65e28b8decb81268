"""Messages, the full history of their delivery state, and full-text search.

Which transitions are legal is decided by the state machine in chat/; this repository records
each one with its time and evidence, atomically with the message's current state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from storage.db import Database, Row

MAX_EVIDENCE_BYTES = 16 * 1024
"""Evidence is a small JSON object (peer ids, status codes, hashes); bound it."""


@dataclass(frozen=True)
class StoredMessage:
    id: int
    conversation_id: str
    message_id: str
    sender: str
    outgoing: bool
    body: str
    sent_at: int
    received_at: int | None
    state: str
    state_reason: str | None
    waku_hash: bytes | None
    reply_to: str | None = None
    kind: str = "text"
    """'text', or 'system': a line about the chat (a join, a leave, a rename)."""


@dataclass(frozen=True)
class Transition:
    from_state: str | None
    to_state: str
    at: int
    evidence: dict[str, Any]


@dataclass(frozen=True)
class PageCursor:
    """Where the previous page ended (its oldest message): pass it to get the page before."""

    sent_at: int
    id: int


_COLUMNS = (
    "id, conversation_id, message_id, sender, outgoing, body, sent_at, received_at, state, "
    "state_reason, waku_hash, reply_to, kind"
)


def _message(r: Row) -> StoredMessage:
    return StoredMessage(
        r[0],
        r[1],
        r[2],
        r[3],
        bool(r[4]),
        r[5],
        r[6],
        r[7],
        r[8],
        r[9],
        r[10] and bytes(r[10]),
        r[11],
        r[12],
    )


def _evidence_json(evidence: Mapping[str, Any] | None) -> str:
    text = json.dumps(dict(evidence or {}), sort_keys=True, separators=(",", ":"))
    if len(text.encode("utf-8")) > MAX_EVIDENCE_BYTES:
        raise ValueError(f"evidence is larger than {MAX_EVIDENCE_BYTES} bytes")
    return text


class MessageRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        *,
        conversation_id: str,
        message_id: str,
        sender: str,
        outgoing: bool,
        body: str,
        sent_at: int,
        state: str,
        now: int,
        received_at: int | None = None,
        waku_hash: bytes | None = None,
        evidence: Mapping[str, Any] | None = None,
        reply_to: str | None = None,
        kind: str = "text",
    ) -> int:
        """Insert the message and its first transition; returns its row id."""
        evidence_text = _evidence_json(evidence)
        with self._db.transaction():
            rowid = self._db.execute(
                "INSERT INTO messages (conversation_id, message_id, sender, outgoing, body, "
                "sent_at, received_at, state, waku_hash, reply_to, kind) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    message_id,
                    sender,
                    int(outgoing),
                    body,
                    sent_at,
                    received_at,
                    state,
                    waku_hash,
                    reply_to,
                    kind,
                ),
            )
            self._db.execute(
                "INSERT INTO message_transitions (message, from_state, to_state, at, evidence) "
                "VALUES (?, NULL, ?, ?, ?)",
                (rowid, state, now, evidence_text),
            )
        return rowid

    def record_transition(
        self,
        rowid: int,
        to_state: str,
        *,
        at: int,
        evidence: Mapping[str, Any] | None = None,
        reason: str | None = None,
        waku_hash: bytes | None = None,
    ) -> None:
        evidence_text = _evidence_json(evidence)
        with self._db.transaction():
            previous = self._db.scalar("SELECT state FROM messages WHERE id = ?", (rowid,))
            if previous is None:
                raise KeyError(f"no message with row id {rowid}")
            self._db.execute(
                "UPDATE messages SET state = ?, state_reason = ?, "
                "waku_hash = coalesce(?, waku_hash) WHERE id = ?",
                (to_state, reason, waku_hash, rowid),
            )
            self._db.execute(
                "INSERT INTO message_transitions (message, from_state, to_state, at, evidence) "
                "VALUES (?, ?, ?, ?, ?)",
                (rowid, previous, to_state, at, evidence_text),
            )

    def history(self, rowid: int) -> list[Transition]:
        rows = self._db.fetchall(
            "SELECT from_state, to_state, at, evidence FROM message_transitions "
            "WHERE message = ? ORDER BY id",
            (rowid,),
        )
        return [Transition(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def get(self, rowid: int) -> StoredMessage | None:
        row = self._db.fetchone(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (rowid,))
        return None if row is None else _message(row)

    def by_message_id(self, conversation_id: str, message_id: str) -> StoredMessage | None:
        row = self._db.fetchone(
            f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = ? AND message_id = ?",
            (conversation_id, message_id),
        )
        return None if row is None else _message(row)

    def by_id(self, message_id: str) -> StoredMessage | None:
        """A message by its id alone (ids are random, so unique across conversations)."""
        row = self._db.fetchone(
            f"SELECT {_COLUMNS} FROM messages WHERE message_id = ? ORDER BY id LIMIT 1",
            (message_id,),
        )
        return None if row is None else _message(row)

    def page(
        self, conversation_id: str, *, limit: int = 50, before: PageCursor | None = None
    ) -> list[StoredMessage]:
        """The `limit` newest messages (older than `before`), oldest first."""
        if before is None:
            rows = self._db.fetchall(
                f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = ? "
                "ORDER BY sent_at DESC, id DESC LIMIT ?",
                (conversation_id, limit),
            )
        else:
            rows = self._db.fetchall(
                f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = ? "
                "AND (sent_at, id) < (?, ?) ORDER BY sent_at DESC, id DESC LIMIT ?",
                (conversation_id, before.sent_at, before.id, limit),
            )
        return [_message(r) for r in reversed(rows)]

    def count(self, conversation_id: str | None = None) -> int:
        if conversation_id is None:
            return int(self._db.scalar("SELECT count(*) FROM messages"))
        return int(
            self._db.scalar(
                "SELECT count(*) FROM messages WHERE conversation_id = ?", (conversation_id,)
            )
        )

    def search(
        self, query: str, *, conversation_id: str | None = None, limit: int = 50
    ) -> list[StoredMessage]:
        """Messages whose body contains every word of `query`, newest first.

        The words are quoted, so user input is never parsed as FTS5 query syntax.
        """
        words = [w.replace('"', '""') for w in query.split()]
        if not words:
            return []
        match = " ".join(f'"{w}"' for w in words)
        sql = (
            f"SELECT {', '.join('m.' + c.strip() for c in _COLUMNS.split(','))} "
            "FROM message_search JOIN messages m ON m.id = message_search.rowid "
            "WHERE message_search MATCH ?"
        )
        params: list[Any] = [match]
        if conversation_id is not None:
            sql += " AND m.conversation_id = ?"
            params.append(conversation_id)
        sql += " ORDER BY m.sent_at DESC, m.id DESC LIMIT ?"
        params.append(limit)
        return [_message(r) for r in self._db.fetchall(sql, params)]
