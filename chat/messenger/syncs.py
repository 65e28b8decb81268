"""SDS sync frames: shortly after a member's content arrives, we send a frame with our
causal history and bloom filter but no content, so their messages become 'delivered' even
when we have nothing to say. Syncs are not outbox messages: a sync that reached nobody is
simply tried again a little later, and the next content frame acknowledges as well."""

from __future__ import annotations

import logging
import secrets

from chat.messenger.channels import SdsChannels
from chat.messenger.config import SYNC_RETRY
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import (
    Conversations,
    PublishFailed,
    SealFailed,
    Transport,
    waku_message,
)
from chat.messenger.persist import StateWriter

log = logging.getLogger(__name__)


class Syncs:
    def __init__(
        self,
        ctx: MessengerContext,
        conversations: Conversations,
        channels: SdsChannels,
        transport: Transport,
        writer: StateWriter,
    ) -> None:
        self._ctx = ctx
        self._conversations = conversations
        self._channels = channels
        self._transport = transport
        self._writer = writer
        self._due: dict[str, float] = {}

    def soon(self, conversation_id: str, now: float) -> None:
        """Content arrived: sync within `sync_delay` (one sync answers a burst)."""
        self._due.setdefault(conversation_id, now + self._ctx.config.sync_delay)
        self._ctx.wake_scheduler()

    # ---- the timed feature -------------------------------------------------------------------
    def next_wakeup(self) -> float | None:
        return min(self._due.values()) if self._due else None

    async def run_due(self, now: float) -> None:
        for conversation_id, due in list(self._due.items()):
            if due <= now:
                await self._send(conversation_id, now)

    async def _send(self, conversation_id: str, now: float) -> None:
        conversation = self._conversations.get(conversation_id)
        channel = await self._channels.get(conversation_id)
        frame = channel.make_sync(secrets.token_hex(16), int(now * 1000))
        if frame is None or conversation is None:
            self._due.pop(conversation_id, None)
            return
        try:
            payload = conversation.crypto.seal(frame.encode())
        except SealFailed as exc:
            log.warning("cannot send a sync to %s: %s", conversation_id, exc.reason)
            self._due.pop(conversation_id, None)
            return
        await self._writer.save_crypto_now()
        message = waku_message(conversation.content_topic, payload, self._ctx.clock())
        try:
            self._transport.publish(conversation.pubsub_topic, message)
        except PublishFailed as exc:
            if not exc.permanent:
                self._due[conversation_id] = now + SYNC_RETRY
                return
            log.warning("a sync to %s was refused: %s", conversation_id, exc.reason)
        self._due.pop(conversation_id, None)
        self._writer.save_later(channel=conversation_id)
