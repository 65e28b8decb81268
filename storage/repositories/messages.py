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
MAX_SEARCH_CHARS = 200
MAX_SEARCH_WORDS = 16
"""A search is a few words a person typed; longer input is refused, not cut."""
MATCH_START, MATCH_END = "\ue000", "\ue001"
"""Around each matched word in a snippet (private-use characters, never in a snippet's text
otherwise: they are taken out of it)."""
SNIPPET_TOKENS = 12
"""Words of context a snippet shows around the matches."""
RANKED_WINDOW = 2000
"""Matches ranked at most: the newest ones. Ranking every match of a word in one message in
seven took 470 ms at 1M messages; the newest 2,000 take a few ms whatever the word, and in
a chat the newest matches are the ones a person looks for."""


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
class SearchHit:
    message: StoredMessage
    snippet: str
    """The part of the body around the matches, each matched word between MATCH_START and
    MATCH_END, '…' where the body goes on."""


class SearchQueryError(ValueError):
    """The words cannot be searched for (too long, too many, or refused by FTS5)."""


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def search_expression(query: str, conversation_id: str | None = None) -> str | None:
    """The FTS5 expression for what a person typed: every word must occur in the body (in
    any order), `word*` matches words starting with it; with `conversation_id`, in that chat
    only. Each word is quoted, so nothing typed is ever read as FTS5 syntax (NEAR, OR, column
    filters). None when there is no word at all."""
    if len(query) > MAX_SEARCH_CHARS:
        raise SearchQueryError(f"a search has at most {MAX_SEARCH_CHARS} characters")
    words = query.split()
    if len(words) > MAX_SEARCH_WORDS:
        raise SearchQueryError(f"a search has at most {MAX_SEARCH_WORDS} words")
    terms = []
    for word in words:
        prefix = len(word) > 1 and word.endswith("*")
        terms.append(_quoted(word.rstrip("*")) + "*" if prefix else _quoted(word))
    if not terms:
        return None
    expression = f"body : ({' '.join(terms)})"
    if conversation_id is not None:
        expression += f" AND conversation_id : {_quoted(conversation_id)}"
    return expression


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

    def page_after(
        self, conversation_id: str, after: PageCursor, *, limit: int = 50
    ) -> list[StoredMessage]:
        """The `limit` oldest messages newer than `after`, oldest first (reading on from a
        message found by search)."""
        rows = self._db.fetchall(
            f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = ? "
            "AND (sent_at, id) > (?, ?) ORDER BY sent_at, id LIMIT ?",
            (conversation_id, after.sent_at, after.id, limit),
        )
        return [_message(r) for r in rows]

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
        """Messages whose body contains every word of `query`, best match first."""
        return [hit.message for hit in self.search_hits(query, conversation_id, limit)]

    def search_hits(
        self, query: str, conversation_id: str | None = None, limit: int = 50
    ) -> list[SearchHit]:
        """Messages whose body contains every word of `query` (see `search_expression`), in
        one chat or all: the best `limit` of the newest RANKED_WINDOW matches (FTS5's bm25,
        newest first among equals), each with a snippet. SearchQueryError for a query that
        cannot be searched."""
        match = search_expression(query, conversation_id)
        if match is None:
            return []
        try:
            ranked = self._db.fetchall(
                "SELECT rowid FROM (SELECT rowid, rank FROM message_search "
                "WHERE message_search MATCH ? ORDER BY rowid DESC LIMIT ?) "
                "ORDER BY rank, rowid DESC LIMIT ?",
                (match, RANKED_WINDOW, limit),
            )
            ids = [int(r[0]) for r in ranked]
            if not ids:
                return []
            # Snippets for the chosen few only: each one re-reads its message's text.
            marks = ", ".join("?" for _ in ids)
            snippets: dict[int, str] = {
                int(r[0]): str(r[1])
                for r in self._db.fetchall(
                    "SELECT rowid, snippet(message_search, 0, ?, ?, '…', ?) FROM message_search "
                    f"WHERE message_search MATCH ? AND rowid IN ({marks})",
                    (MATCH_START, MATCH_END, SNIPPET_TOKENS, match, *ids),
                )
            }
            rows = {
                int(r[0]): _message(r)
                for r in self._db.fetchall(
                    f"SELECT {_COLUMNS} FROM messages WHERE id IN ({marks})", ids
                )
            }
        except Exception as exc:  # the driver's own error type differs (sqlcipher, sqlite3)
            if "fts5" in str(exc).lower():
                raise SearchQueryError(f"cannot search for that: {exc}") from None
            raise
        return [SearchHit(rows[i], snippets.get(i, rows[i].body)) for i in ids if i in rows]
