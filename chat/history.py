"""Reading chats and messages from the profile's store, with no network part.

The messenger answers its read calls through this (adding what only it knows: contacts'
current names and the outbox's live state). The TUI reads through it alone in the moment
between unlocking and the messenger being up, so the chat list shows before libp2p has
even been imported."""

from __future__ import annotations

from collections.abc import Mapping

from chat import events as ev
from storage.aio import AsyncStore
from storage.repositories.conversations import Conversation
from storage.repositories.messages import (
    MATCH_END,
    MATCH_START,
    PageCursor,
    SearchHit,
    SearchQueryError,
    StoredMessage,
    search_expression,
)
from storage.store import Store

MAX_PAGE = 500
"""The most messages one page may ask for."""
MAX_CHATS = 1000
"""Chats listed at most, most recently active first."""
MAX_SEARCH_RESULTS = 100
"""Search results at most in one answer."""


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
        self,
        chat_id: str,
        *,
        limit: int = 50,
        before: str | None = None,
        after: str | None = None,
    ) -> list[StoredMessage]:
        """The `limit` newest messages of a chat older than message `before`, oldest first;
        or, with `after`, the `limit` oldest ones newer than that message."""
        if not 1 <= limit <= MAX_PAGE:
            raise ev.InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        if before is not None and after is not None:
            raise ev.InvalidInput("ask for messages before one message or after one, not both")
        await self.conversation(chat_id)

        def cursor_of(store: Store, message_id: str) -> PageCursor:
            anchor = store.messages.by_message_id(chat_id, message_id)
            if anchor is None:
                raise ev.NotFound(f"no message {message_id[:64]} in this chat")
            return PageCursor(anchor.sent_at, anchor.id)

        def page(store: Store) -> list[StoredMessage]:
            if after is not None:
                return store.messages.page_after(chat_id, cursor_of(store, after), limit=limit)
            cursor = None if before is None else cursor_of(store, before)
            return store.messages.page(chat_id, limit=limit, before=cursor)

        return await self._db.run(page)

    async def message(self, message_id: str) -> StoredMessage:
        stored = await self._db.run(lambda s: s.messages.by_id(message_id))
        if stored is None:
            raise ev.NotFound(f"no message {message_id[:64]}")
        return stored

    async def search(
        self, query: str, *, chat_id: str | None = None, limit: int = 20
    ) -> list[SearchHit]:
        """Messages with every word of `query` (`word*`: words starting with it), in one chat
        or all, best match first. InvalidInput for a query that cannot be searched."""
        if not 1 <= limit <= MAX_SEARCH_RESULTS:
            raise ev.InvalidInput(f"limit must be between 1 and {MAX_SEARCH_RESULTS}")
        try:
            if search_expression(query) is None:
                raise ev.InvalidInput("type a word to search for")
        except SearchQueryError as exc:
            raise ev.InvalidInput(str(exc)) from None
        if chat_id is not None:
            await self.conversation(chat_id)

        def search(store: Store) -> list[SearchHit]:
            try:
                return store.messages.search_hits(query, chat_id, limit)
            except SearchQueryError as exc:
                raise ev.InvalidInput(str(exc)) from None

        return await self._db.run(search)


def search_views(hits: list[SearchHit], chat_names: Mapping[str, str]) -> list[ev.SearchResultView]:
    """Search hits as the faces see them: the snippet's match markers become offsets."""
    return [
        ev.SearchResultView(
            chat_id=hit.message.conversation_id,
            message_id=hit.message.message_id,
            text=hit.message.body,
            timestamp=hit.message.sent_at / 1000,
            snippet=snippet,
            highlights=highlights,
            chat_name=chat_names.get(hit.message.conversation_id, ""),
            sender=hit.message.sender,
            outgoing=hit.message.outgoing,
        )
        for hit in hits
        for snippet, highlights in [_highlighted(hit.snippet)]
    ]


def _highlighted(marked: str) -> tuple[str, list[tuple[int, int]]]:
    """The snippet without its markers, and where the marked words were."""
    text: list[str] = []
    spans: list[tuple[int, int]] = []
    start: int | None = None
    length = 0
    for char in marked:
        if char == MATCH_START:
            start = length
        elif char == MATCH_END:
            if start is not None and length > start:
                spans.append((start, length))
            start = None
        else:
            text.append(char)
            length += 1
    return "".join(text), spans


class StoredChats:
    """The read side of the messenger's interface (`chats`, `messages`, `message`), from the
    store alone: names are the stored titles and outgoing states the last ones written."""

    def __init__(self, db: AsyncStore) -> None:
        self.history = ChatHistory(db)

    async def chats(self) -> list[ev.ChatView]:
        return [ev.chat_view_of(c) for c in await self.history.conversations()]

    async def messages(
        self,
        chat_id: str,
        *,
        limit: int = 50,
        before: str | None = None,
        after: str | None = None,
    ) -> list[ev.MessageView]:
        page = await self.history.page(chat_id, limit=limit, before=before, after=after)
        return [ev.message_view_of(m) for m in page]

    async def message(self, message_id: str) -> ev.MessageView:
        return ev.message_view_of(await self.history.message(message_id))

    async def search(
        self, query: str, *, chat_id: str | None = None, limit: int = 20
    ) -> list[ev.SearchResultView]:
        hits = await self.history.search(query, chat_id=chat_id, limit=limit)
        names = {c.id: c.title for c in await self.history.conversations()}
        return search_views(hits, names)
