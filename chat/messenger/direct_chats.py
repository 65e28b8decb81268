"""1:1 chats: the first conversation kind on the pipeline.

A 1:1 conversation exists once two people are mutual contacts. Its parts:
- crypto: pairwise Olm with the contact (`PairwiseOlm`);
- membership: the contact alone, whose acknowledgement makes a message delivered;
- control messages: anything else Olm opens on its topic (emoji verification steps) goes to
  the handler registered for that payload, and anything unexpected is refused.
Its id and content topic come from the pair of chat keys (chat/direct.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from chat import events as ev
from chat.contacts import MUTUAL, ContactRequests
from chat.direct import Opened, conversation_content_topic
from chat.history import ChatHistory
from chat.messenger.config import MAX_MESSAGE_ID_LENGTH
from chat.messenger.contact_book import ContactBook
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import Conversation, Conversations, Unsealed
from chat.messenger.olm import OlmCrypto, PairwiseOlm
from chat.messenger.sending import Sending
from chat.proto import direct_pb2
from storage.repositories.conversations import Conversation as StoredConversation
from storage.store import Store

KIND = "direct"

DirectControl = Callable[[Opened, str], Awaitable[None]]
"""Handles one kind of control payload: (what Olm opened, the contact's chat key)."""
WatchTopic = Callable[[str, str], Awaitable[None]]
"""Scan (pubsub topic, content topic) for missed messages from its saved cursor on."""


class PairMembership:
    """The contact is the one other member; their acknowledgement delivers a message."""

    def __init__(self, contacts: ContactBook, peer: str) -> None:
        self._contacts = contacts
        self.peer = peer

    def member_of(self, sender_key: bytes) -> str | None:
        link = self._contacts.link(self.peer)
        return self.peer if link is not None and link.identity_key == sender_key else None

    def members(self) -> frozenset[str]:
        return frozenset((self.peer,))

    def acknowledged(self, member: str, message_id: str) -> None:
        return None


class DirectChats:
    def __init__(
        self,
        ctx: MessengerContext,
        contacts: ContactBook,
        requests: ContactRequests,
        olm: OlmCrypto,
        conversations: Conversations,
        sending: Sending,
        history: ChatHistory,
        watch: WatchTopic,
        pubsub_topic: str,
    ) -> None:
        self._ctx = ctx
        self._contacts = contacts
        self._requests = requests
        self._olm = olm
        self._conversations = conversations
        self._sending = sending
        self._history = history
        self._watch = watch
        self.pubsub_topic = pubsub_topic
        self.peer_of_chat: dict[str, str] = {}
        self._control: dict[str, DirectControl] = {}

    def handle(self, body: str, handler: DirectControl) -> None:
        """Route control payloads of this kind (a DirectPayload `body`) to `handler`."""
        self._control[body] = handler

    # ---- conversations -----------------------------------------------------------------------
    def chat_id_with(self, chat_key: str) -> str:
        return self._contacts.chat_id_with(self._ctx.me.chat_key, chat_key)

    def restore(self, stored: list[StoredConversation]) -> None:
        """The 1:1 conversations of the profile, each with the contact it is with."""
        by_chat_id: dict[str, str] = {}
        for chat_key in self._contacts.links:
            by_chat_id.setdefault(self.chat_id_with(chat_key), chat_key)
        for conv in stored:
            peer = by_chat_id.get(conv.id) if conv.kind == KIND else None
            if peer is not None:
                self._register(conv.id, peer, conv.content_topic)

    def conversations(self) -> list[Conversation]:
        found = (self._conversations.get(chat_id) for chat_id in self.peer_of_chat)
        return [c for c in found if c is not None]

    def _register(self, chat_id: str, chat_key: str, content_topic: str) -> None:
        self.peer_of_chat[chat_id] = chat_key
        self._conversations.add(
            Conversation(
                id=chat_id,
                kind=KIND,
                pubsub_topic=self.pubsub_topic,
                content_topic=content_topic,
                crypto=PairwiseOlm(self._olm, self._contacts, chat_key),
                membership=PairMembership(self._contacts, chat_key),
                on_control=self._on_control,
            )
        )

    async def ensure_chat(self, chat_key: str) -> str:
        """The conversation with a (now mutual) contact: created, watched and announced the
        first time. Under the lock."""
        chat_id = self.chat_id_with(chat_key)
        if chat_id in self.peer_of_chat:
            return chat_id
        link = self._contacts.links[chat_key]
        topic = conversation_content_topic(chat_id)
        now_ms = self._ctx.now_ms()
        conv = StoredConversation(
            chat_id, KIND, link.display_name, self.pubsub_topic, topic, now_ms, now_ms
        )

        def add(store: Store) -> None:
            if store.conversations.get(chat_id) is None:
                store.conversations.add(conv)

        await self._ctx.db.run(add)
        self._register(chat_id, chat_key, topic)
        await self._watch(self.pubsub_topic, topic)
        self._ctx.emit(ev.ChatUpdated(await self.chat_view(chat_id)))
        return chat_id

    # ---- views -------------------------------------------------------------------------------
    async def chat_view(self, chat_id: str) -> ev.ChatView:
        return self.view(await self._history.conversation(chat_id))

    def view(self, conv: StoredConversation) -> ev.ChatView:
        """A stored chat with its contact's current name."""
        peer = self.peer_of_chat.get(conv.id)
        return ev.chat_view_of(conv, name=self._contacts.display_name(peer), peer=peer)

    # ---- sending -----------------------------------------------------------------------------
    async def send_text(self, chat_id: str, text: str, reply_to: str | None) -> ev.MessageView:
        """Under the lock; `text` is checked by the caller, `reply_to` here: it must name a
        message of this chat."""
        peer = self.peer_of_chat.get(chat_id)
        conversation = self._conversations.get(chat_id)
        if peer is None or conversation is None:
            raise ev.NotFound(f"no chat {chat_id[:32]}")
        if self._requests.get(peer).state is not MUTUAL:
            raise ev.NotPossible("you are not contacts any more; send a contact request")
        if reply_to is not None and not await self.has_message(chat_id, reply_to):
            raise ev.InvalidInput("reply_to names no message of this chat")
        now = self._ctx.clock()
        message_id = secrets.token_hex(16)
        body = direct_pb2.ChatMessage(
            id=message_id, text=text, reply_to=reply_to or "", sent_at_ms=int(now * 1000)
        )
        return await self._sending.submit(
            conversation,
            message_id,
            body.SerializeToString(),
            text=text,
            reply_to=reply_to,
            now=now,
        )

    async def has_message(self, chat_id: str, message_id: str) -> bool:
        if len(message_id) > MAX_MESSAGE_ID_LENGTH:
            return False
        found = await self._ctx.db.run(lambda s: s.messages.by_message_id(chat_id, message_id))
        return found is not None

    # ---- receiving ---------------------------------------------------------------------------
    async def _on_control(self, conversation: Conversation, unsealed: Unsealed) -> None:
        opened = unsealed.detail
        if not isinstance(opened, Opened):
            raise TypeError("a 1:1 control message is opened by PairwiseOlm")
        body = opened.payload.WhichOneof("body")
        handler = self._control.get(body or "")
        if handler is None:
            self._ctx.reject(f"a {body or 'empty'} payload on the wrong topic")
            return
        await handler(opened, self.peer_of_chat[conversation.id])
