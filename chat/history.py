"""Reading chats and messages from the profile's store, with no network part.

The messenger answers its read calls through this (adding what only it knows: contacts'
current names and the outbox's live state). The TUI reads through it alone in the moment
between unlocking and the messenger being up, so the chat list shows before libp2p has
even been imported."""

from __future__ import annotations

from chat import events as ev
from storage.aio import AsyncStore
from storage.repositories.conversations import Conversation
from storage.repositories.messages import PageCursor, StoredMessage
from storage.store import Store

MAX_PAGE = 500
"""The most messages one page may ask for."""
MAX_CHATS = 1000
"""Chats listed at most, most recently active first."""


class ChatHistory:
    def __init__(self, db: AsyncStore) -> None:
        self._db = db

    async def conversation(self, chat_id: str) -> Conversation:
        conv = await self._db.run(lambda s: s.conversations.get(chat_id))
        if conv is None:
            raise ev.NotFound(f"no chat {chat_id[:32]}")
        return conv

    async def conversations(self) -> list[Conversation]:
        return await self._db.run(lambda s: s.conversations.recent(MAX_CHATS))

    async def page(
        self, chat_id: str, *, limit: int = 50, before: str | None = None
    ) -> list[StoredMessage]:
        """The `limit` newest messages of a chat older than message `before`, oldest first."""
        if not 1 <= limit <= MAX_PAGE:
            raise ev.InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        await self.conversation(chat_id)

        def page(store: Store) -> list[StoredMessage]:
            cursor = None
            if before is not None:
                anchor = store.messages.by_message_id(chat_id, before)
                if anchor is None:
                    raise ev.NotFound(f"no message {before[:64]} in this chat")
                cursor = PageCursor(anchor.sent_at, anchor.id)
            return store.messages.page(chat_id, limit=limit, before=cursor)

        return await self._db.run(page)

    async def message(self, message_id: str) -> StoredMessage:
        stored = await self._db.run(lambda s: s.messages.by_id(message_id))
        if stored is None:
            raise ev.NotFound(f"no message {message_id[:64]}")
        return stored


class StoredChats:
    """The read side of the messenger's interface (`chats`, `messages`, `message`), from the
    store alone: names are the stored titles and outgoing states the last ones written."""

    def __init__(self, db: AsyncStore) -> None:
        self.history = ChatHistory(db)

    async def chats(self) -> list[ev.ChatView]:
        return [ev.chat_view_of(c) for c in await self.history.conversations()]

    async def messages(
        self, chat_id: str, *, limit: int = 50, before: str | None = None
    ) -> list[ev.MessageView]:
        page = await self.history.page(chat_id, limit=limit, before=before)
        return [ev.message_view_of(m) for m in page]

    async def message(self, message_id: str) -> ev.MessageView:
        return ev.message_view_of(await self.history.message(message_id))
