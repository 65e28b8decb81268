"""A member's leaving: told, inside Olm, to the moderators, and recorded by the first of them
who gets it (the removal starts a new epoch for everyone else)."""

from __future__ import annotations

from chat.communities.roles import Action, allowed
from chat.identity import ContactLink
from chat.messenger.communities import CommunityChats
from chat.messenger.community_state import Community
from chat.messenger.community_wire import RequestsPublisher, identity_of, pairwise
from chat.messenger.context import MessengerContext
from chat.messenger.olm import OlmCrypto
from chat.messenger.persist import StateWriter
from chat.proto import direct_pb2


class CommunityLeaving:
    def __init__(
        self,
        ctx: MessengerContext,
        olm: OlmCrypto,
        writer: StateWriter,
        chats: CommunityChats,
        publisher: RequestsPublisher,
    ) -> None:
        self._ctx = ctx
        self._olm = olm
        self._writer = writer
        self._chats = chats
        self._publisher = publisher

    async def tell_moderators(self, community: Community) -> None:
        """Our departure, inside Olm, to every moderator whose link the description holds:
        the first who gets it removes us (a new epoch for the others)."""
        own = self._ctx.me.chat_key_text
        messages = []
        for chat_key in community.description.moderators():
            link_text = community.link_of(chat_key)
            if not link_text or chat_key == own:
                continue
            link = ContactLink.parse(link_text)
            payload = direct_pb2.DirectPayload(community_leave=community.id)
            envelope = self._olm.seal_to(link, payload)
            messages.append(pairwise(link.identity_key, envelope.encode()))
        await self._writer.save_crypto_now()
        for message in messages:
            self._publisher.publish(community.id, message)

    async def on_leave(self, community_id: str, sender_identity: bytes, named: str) -> None:
        community = self._chats.communities.get(community_id)
        if community is None or named != community_id:
            return
        if not allowed(community.role, Action.ANSWER_REQUEST):
            return
        leaving = next(
            (
                m.chat_key
                for m in community.description.members
                if identity_of(community.link_of(m.chat_key)) == sender_identity
            ),
            None,
        )
        if leaving is None:
            self._ctx.reject("a departure from someone who is not a member we know")
            return
        await self._chats.record_departure(community, leaving)
