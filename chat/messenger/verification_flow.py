"""Emoji (SAS) verification on the wire: the flows of chat/verification.py (sans-IO), one
per contact, whose steps travel as control messages of the 1:1 conversation (sealed with
the pair's Olm session, so only the contact can take part). A verified contact is kept in
the profile."""

from __future__ import annotations

import contextlib
import logging

from chat import events as ev
from chat.direct import DirectError, Opened, conversation_content_topic
from chat.messenger.contact_book import ContactBook
from chat.messenger.contacts_flow import ContactsFlow
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import waku_message
from chat.messenger.direct_chats import DirectChats
from chat.messenger.olm import OlmCrypto
from chat.messenger.persist import StateWriter
from chat.messenger.transport import BestEffort
from chat.proto import direct_pb2
from chat.verification import CANCEL, MAC, REPLY, START, Verification, VerificationError
from storage.repositories.contacts import Contact

log = logging.getLogger(__name__)


class VerificationFlow:
    def __init__(
        self,
        ctx: MessengerContext,
        contacts: ContactBook,
        requests: ContactsFlow,
        direct: DirectChats,
        olm: OlmCrypto,
        writer: StateWriter,
        publish: BestEffort,
    ) -> None:
        self._ctx = ctx
        self._contacts = contacts
        self._requests = requests
        self._direct = direct
        self._olm = olm
        self._writer = writer
        self._publish = publish
        self._flows: dict[str, Verification] = {}
        direct.handle("verification", self._on_step)

    def view(self, chat_key: str) -> ev.VerificationView:
        flow = self._flows.get(chat_key)
        if flow is None:
            state = "verified" if chat_key in self._contacts.verified else "none"
            return ev.VerificationView(chat_key, state, [])
        return ev.VerificationView(
            chat_key, flow.state.value, flow.emoji, flow.their_mac is not None
        )

    def updated(self, chat_key: str) -> ev.VerificationView:
        """Tell the faces where the verification with this contact stands."""
        view = self.view(chat_key)
        self._ctx.emit(ev.VerificationUpdated(view))
        return view

    # ---- commands (under the lock) -----------------------------------------------------------
    async def start(self, chat_key: str) -> None:
        """Begin an emoji comparison with a contact (both must be online)."""
        link = self._requests.mutual_link(chat_key)
        flow = Verification(self._ctx.me.chat_key, link.chat_key)
        self._flows[chat_key] = flow
        await self._send(chat_key, flow, START, public_key=flow.sas.public_key)

    async def confirm(self, chat_key: str) -> None:
        """The user says the emoji on both screens match."""
        self._requests.mutual_link(chat_key)
        flow = self._active(chat_key)
        try:
            mac = flow.confirm()
        except VerificationError as exc:
            raise ev.NotPossible(str(exc)) from None
        await self._send(chat_key, flow, MAC, mac=mac)
        await self._result(chat_key, flow)

    async def cancel(self, chat_key: str) -> None:
        """The emoji differ, or the user stops: tell the contact."""
        self._requests.mutual_link(chat_key)
        flow = self._active(chat_key)
        with contextlib.suppress(VerificationError):
            flow.cancel()
        await self._send(chat_key, flow, CANCEL)

    def _active(self, chat_key: str) -> Verification:
        flow = self._flows.get(chat_key)
        if flow is None:
            raise ev.NotPossible("no verification with this contact is under way")
        return flow

    async def _send(
        self, chat_key: str, flow: Verification, step: int, *, public_key: str = "", mac: str = ""
    ) -> None:
        link = self._contacts.links[chat_key]
        body = direct_pb2.VerificationBody(
            verification_id=flow.verification_id, step=step, public_key=public_key, mac=mac
        )
        try:
            envelope = self._olm.seal(
                link.identity_key, direct_pb2.DirectPayload(verification=body)
            )
        except DirectError as exc:
            raise ev.NotPossible(str(exc)) from None
        await self._writer.save_crypto_now()
        topic = conversation_content_topic(self._direct.chat_id_with(chat_key))
        message = waku_message(topic, envelope.encode(), self._ctx.clock())
        self._publish.publish(self._direct.pubsub_topic, message)

    # ---- their steps (a control message of the 1:1 conversation) -----------------------------
    async def _on_step(self, opened: Opened, peer: str) -> None:
        link = self._contacts.link(peer)
        if link is None or opened.sender_identity_key != link.identity_key:
            self._ctx.reject("a verification step from someone who is not this chat's contact")
            return
        body = opened.payload.verification
        flow = self._flows.get(peer)
        try:
            if body.step == START:
                flow = Verification(self._ctx.me.chat_key, link.chat_key, body.verification_id)
                self._flows[peer] = flow
                flow.their_key(body.public_key)
                await self._send(peer, flow, REPLY, public_key=flow.sas.public_key)
            elif flow is None or flow.verification_id != body.verification_id:
                log.info("verification step for an unknown verification from %s", peer[:16])
                return
            elif body.step == REPLY:
                flow.their_key(body.public_key)
            elif body.step == MAC:
                flow.their_confirmation(body.mac)
                await self._result(peer, flow)
            elif body.step == CANCEL:
                flow.cancel()
        except (VerificationError, ev.NotPossible) as exc:
            log.info("verification with %s: %s", peer[:16], exc)
            return
        self.updated(peer)

    async def _result(self, chat_key: str, flow: Verification) -> None:
        if flow.state.value != "verified" or chat_key in self._contacts.verified:
            return
        self._contacts.verified.add(chat_key)
        link = self._contacts.links[chat_key]
        contact = Contact(
            chat_key,
            link.identity_key.hex(),
            link.display_name,
            verified=True,
            blocked=False,
            added_at=self._ctx.now_ms(),
        )
        await self._ctx.db.run(lambda s: s.contacts.upsert(contact))
        self._ctx.emit(ev.ContactUpdated(self._requests.view(chat_key)))
