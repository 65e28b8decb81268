"""Conversations: 1:1, private groups and community channels."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database, Row


@dataclass(frozen=True)
class Conversation:
    id: str
    kind: str
    title: str
    pubsub_topic: str
    content_topic: str
    created_at: int
    last_activity_at: int
    unread: int = 0
    muted: bool = False


_COLUMNS = (
    "id, kind, title, pubsub_topic, content_topic, created_at, last_activity_at, unread, muted"
)


def _conversation(r: Row) -> Conversation:
    return Conversation(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]))


class ConversationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, conversation: Conversation) -> None:
        c = conversation
        self._db.execute(
            f"INSERT INTO conversations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                c.id,
                c.kind,
                c.title,
                c.pubsub_topic,
                c.content_topic,
                c.created_at,
                c.last_activity_at,
                c.unread,
                int(c.muted),
            ),
        )

    def get(self, conversation_id: str) -> Conversation | None:
        row = self._db.fetchone(
            f"SELECT {_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)
        )
        return None if row is None else _conversation(row)

    def recent(self, limit: int = 100) -> list[Conversation]:
        rows = self._db.fetchall(
            f"SELECT {_COLUMNS} FROM conversations ORDER BY last_activity_at DESC LIMIT ?",
            (limit,),
        )
        return [_conversation(r) for r in rows]

    def touch(self, conversation_id: str, *, now: int, unread_delta: int = 0) -> None:
        self._db.execute(
            "UPDATE conversations SET last_activity_at = max(last_activity_at, ?), "
            "unread = max(0, unread + ?) WHERE id = ?",
            (now, unread_delta, conversation_id),
        )

    def set_title(self, conversation_id: str, title: str) -> None:
        """A group renamed: the title the chat list shows before the messenger runs."""
        self._db.execute(
            "UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id)
        )

    def mark_read(self, conversation_id: str) -> None:
        self._db.execute("UPDATE conversations SET unread = 0 WHERE id = ?", (conversation_id,))

    def remove(self, conversation_id: str) -> None:
        """Removes the conversation and, by cascade, its messages and their history."""
        self._db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
