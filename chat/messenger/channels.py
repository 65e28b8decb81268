"""One SDS channel per conversation (chat/reliability/sds.py, sans-IO): loaded from the
profile on first use, kept in memory, and exported as a row whenever it is saved."""

from __future__ import annotations

import json
import logging

from chat.messenger.context import MessengerContext
from chat.reliability.sds import SdsChannel, SdsError
from storage.repositories.reliability import SdsChannelState

log = logging.getLogger(__name__)


class SdsChannels:
    def __init__(self, ctx: MessengerContext) -> None:
        self._ctx = ctx
        self._channels: dict[str, SdsChannel] = {}

    async def get(self, conversation_id: str) -> SdsChannel:
        channel = self._channels.get(conversation_id)
        if channel is not None:
            return channel
        stored = await self._ctx.db.run(lambda s: s.sds_channels.load(conversation_id))
        own = self._ctx.me.chat_key_text
        params = self._ctx.config.sds
        if stored is None:
            channel = SdsChannel(conversation_id, own, params)
        else:
            try:
                channel = SdsChannel.from_state(
                    conversation_id, own, json.loads(stored.state), params
                )
            except (SdsError, ValueError, KeyError) as exc:
                log.error(
                    "SDS state of chat %s is unreadable (%s); starting afresh", conversation_id, exc
                )
                channel = SdsChannel(conversation_id, own, params)
        self._channels[conversation_id] = channel
        return channel

    def loaded_channel(self, conversation_id: str) -> SdsChannel | None:
        """The channel if it is in memory (it is, for any conversation that sent or received
        since start)."""
        return self._channels.get(conversation_id)

    def loaded(self) -> list[tuple[str, SdsChannel]]:
        return list(self._channels.items())

    def state_row(self, conversation_id: str, now: float) -> SdsChannelState:
        """A loaded channel as the profile keeps it."""
        channel = self._channels[conversation_id]
        return SdsChannelState(
            conversation_id,
            channel.lamport,
            json.dumps(channel.export_state(), separators=(",", ":")).encode(),
            int(now * 1000),
        )
