"""Contact requests on the wire: the request flows of chat/contacts.py (sans-IO) driven
with Olm and the profile DB.

- Our request is an Olm pre-key message to the contact's fallback key, carrying our link,
  intro and request id, on the contact-request partition of their chat key. It is re-sent
  on the flow's visible schedule until answered, withdrawn or expired (`run_due`).
- Their request arrives on our partition (this is its `Inbox`): it counts only if the link
  inside names the identity key Olm proved. A stranger's message spends the budget for
  strangers before it is opened (strangers.py); messages from people we chose do not, and
  are handled before the strangers' backlog (`urgent`).
- An answer, and the withdrawal of a request, travel inside the session the request opened.
  Accepting creates the 1:1 chat. A withdrawal that comes before its request (relay brought
  it, a store scan brings the request later) is kept a while and applied when the request
  comes (chat/early_withdrawals.py).
- Asking someone we already asked sends nothing: the open request keeps its schedule.
- Every flow step is saved (with the ratchet it moved) before anything is published.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable

from chat import events as ev
from chat.contacts import (
    MUTUAL,
    PAIR_NONCE_BYTES,
    REQUEST_ID,
    ContactRequest,
    ContactRequestError,
    ContactRequests,
    RequestState,
    RequestTransition,
    flow_from_json,
    flow_to_json,
)
from chat.direct import (
    MAX_INTRO_LENGTH,
    DirectError,
    Envelope,
    Opened,
    contact_request_content_topic,
    request_payload,
)
from chat.early_withdrawals import EarlyWithdrawals
from chat.identity import ContactLink, IdentityError, sanitize_display_text
from chat.identity_store import save_identity
from chat.messenger.contact_book import ContactBook
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import OpenRefused, waku_message
from chat.messenger.direct_chats import DirectChats
from chat.messenger.olm import OlmCrypto
from chat.messenger.persist import StateWriter
from chat.messenger.strangers import Strangers
from chat.messenger.transport import BestEffort
from chat.proto import direct_pb2
from chat.text import join_surrogate_pairs
from chat.waku.message import WakuMessage
from storage.repositories.sessions import StoredFlow
from storage.store import Store

log = logging.getLogger(__name__)


class ContactsFlow:
    def __init__(
        self,
        ctx: MessengerContext,
        contacts: ContactBook,
        requests: ContactRequests,
        olm: OlmCrypto,
        writer: StateWriter,
        publish: BestEffort,
        direct: DirectChats,
        strangers: Strangers,
        pubsub_topic: str,
    ) -> None:
        self._ctx = ctx
        self._contacts = contacts
        self.requests = requests
        self._olm = olm
        self._writer = writer
        self._publish = publish
        self._direct = direct
        self.strangers = strangers
        self._pubsub_topic = pubsub_topic
        self._early_withdrawals = EarlyWithdrawals()

    async def restore(self, flows: list[StoredFlow], dropped: int) -> None:
        """The profile's flows; strangers' requests beyond the cap (a profile flooded before
        spam protection) are dropped now, and the profile with them."""
        for stored in flows:
            self.requests.restore(flow_from_json(stored.chat_key, stored.flow))
            if stored.their_link:
                with contextlib.suppress(IdentityError):
                    self._contacts.remember(ContactLink.parse(stored.their_link), stored.their_link)
        over = self.strangers.restore(self.requests.all(), dropped)
        if over:
            await self._writer.save_crypto_now(also=_deleting(over))
            await self.strangers.save_count()

    @property
    def request_topic(self) -> str:
        """Our contact-request partition: where requests to us (and answers) arrive."""
        return contact_request_content_topic(self._ctx.me.chat_key)

    # ---- views -------------------------------------------------------------------------------
    def view(self, chat_key: str) -> ev.ContactView:
        flow = self.requests.get(chat_key)
        link = self._contacts.link(chat_key)
        mutual = flow.state is MUTUAL and link is not None
        return ev.ContactView(
            chat_key=chat_key,
            display_name=link.display_name if link else "",
            state=flow.state.value if flow.state else "none",
            chat_id=self._direct.chat_id_with(chat_key) if mutual else None,
            intro=flow.intro,
            verified=chat_key in self._contacts.verified,
            updated_at=flow.history[-1].at if flow.history else 0.0,
            next_send_at=flow.next_send_at,
            expires_at=flow.expires_at,
            sends=flow.sends,
        )

    def views(self) -> list[ev.ContactView]:
        flows = sorted(
            self.requests.all(), key=lambda f: f.history[-1].at if f.history else 0, reverse=True
        )
        return [self.view(f.chat_key) for f in flows if f.state is not None]

    def contact(self, chat_key: str) -> ContactRequest:
        flow = self.requests.find(chat_key)
        if flow is None or flow.state is None or chat_key not in self._contacts:
            raise ev.NotFound(f"you have no contact with the chat key {chat_key[:64]}")
        return flow

    def mutual_link(self, chat_key: str) -> ContactLink:
        """The link of someone we are mutual contacts with (NotPossible otherwise)."""
        if self.contact(chat_key).state is not MUTUAL:
            raise ev.NotPossible("you can verify a contact once you are both contacts")
        return self._contacts.links[chat_key]

    def outbox_items(self) -> list[ev.OutboxItemView]:
        """Our requests still waiting for an answer."""
        return [
            ev.OutboxItemView(
                id=flow.chat_key,
                kind="contact_request",
                chat_id=None,
                summary=f"contact request to {self._contacts.links[flow.chat_key].display_name}",
                state=flow.state.value,
                reason=None,
                attempts=flow.sends,
                max_attempts=0,
                next_attempt_at=flow.next_send_at,
                created_at=flow.history[0].at if flow.history else 0.0,
            )
            for flow in self.requests.all()
            if flow.state is RequestState.REQUEST_SENT and flow.chat_key in self._contacts
        ]

    # ---- commands (under the lock) -----------------------------------------------------------
    def parse(self, link: str, intro: str) -> tuple[ContactLink, str]:
        """A contact link and an intro from the user, checked (no lock needed). The intro is
        cleaned as the recipient will show it (control and invisible characters removed,
        surrogate pairs joined); longer than MAX_INTRO_LENGTH is refused, never cut."""
        try:
            parsed = ContactLink.parse(link)
        except IdentityError as exc:
            raise ev.InvalidInput(str(exc)) from None
        if parsed.chat_key == self._ctx.me.chat_key:
            raise ev.InvalidInput("that is your own contact link")
        intro = sanitize_display_text(join_surrogate_pairs(intro), multiline=True)
        if len(intro) > MAX_INTRO_LENGTH:
            raise ev.InvalidInput(
                f"an intro has at most {MAX_INTRO_LENGTH} characters (this one has {len(intro)})"
            )
        return parsed, intro

    async def add(self, parsed: ContactLink, link: str, intro: str) -> ev.ContactView:
        """Ask them. Asking again while our request is open sends nothing now: the request
        keeps its intro and goes out again on its schedule (idempotent)."""
        chat_key = parsed.chat_key_text
        self._contacts.remember(parsed, "".join(link.split()))
        try:
            transition = self.requests.send(chat_key, intro, self._ctx.clock())
        except ContactRequestError as exc:
            raise ev.NotPossible(str(exc)) from None
        if transition is None:
            return self.view(chat_key)
        dropped = self.strangers.moved(chat_key, transition.event)
        if transition.new is MUTUAL:  # they had asked us: asking back is accepting
            await self._answer(chat_key, accepted=True, transition=transition, dropped=dropped)
        else:
            await self._send_request(chat_key, transition)
        return self.view(chat_key)

    async def decide(self, chat_key: str, *, accepted: bool) -> ev.ContactView:
        self.contact(chat_key)
        step = self.requests.accept if accepted else self.requests.decline
        try:
            transition = step(chat_key, self._ctx.clock())
        except ContactRequestError as exc:
            raise ev.NotPossible(str(exc)) from None
        self.strangers.moved(chat_key, transition.event)
        await self._answer(chat_key, accepted=accepted, transition=transition)
        return self.view(chat_key)

    async def cancel(self, chat_key: str) -> ev.ContactView:
        """Withdraw our request, and tell them (inside the session it opened), so their
        side shows it withdrawn rather than waiting."""
        flow = self.contact(chat_key)
        request_id = flow.request_id or ""
        try:
            transition = self.requests.cancel(chat_key, self._ctx.clock())
        except ContactRequestError as exc:
            raise ev.NotPossible(str(exc)) from None
        payload = direct_pb2.DirectPayload(
            cancel=direct_pb2.ContactCancelBody(request_id=request_id)
        )
        link = self._contacts.links[chat_key]
        envelope = self._olm.seal_to(link, payload)
        await self._save_flow(chat_key, transition, with_crypto=True)
        self._publish_on_partition(link, envelope)
        return self.view(chat_key)

    async def rename(self, name: str) -> None:
        """Keep our new display name, and tell every contact: each gets our new link in a
        repeated acceptance, which they take as a link update (open requests carry the new
        link on their next re-send)."""
        me = self._ctx.me
        old_name, me.display_name = me.display_name, name
        if name == old_name:
            return
        now_ms = self._ctx.now_ms()
        try:
            await self._ctx.db.run(lambda s: save_identity(s, me, now_ms))
        except BaseException:
            me.display_name = old_name
            raise
        for flow in self.requests.all():
            if flow.state is MUTUAL and flow.chat_key in self._contacts:
                try:
                    await self._answer(flow.chat_key, accepted=True, transition=None)
                except DirectError as exc:  # the others are still told
                    log.warning("could not tell %s our new name: %s", flow.chat_key[:16], exc)

    # ---- the wire ----------------------------------------------------------------------------
    async def _send_request(self, chat_key: str, transition: RequestTransition | None) -> None:
        """Seal our (current) request to them, persist, publish."""
        link = self._contacts.links[chat_key]
        flow = self.requests.get(chat_key)
        payload = request_payload(
            self._ctx.me.contact_link(), flow.intro, flow.request_id or "", self._our_nonce(flow)
        )
        envelope = self._olm.seal_to(link, payload)
        await self._save_flow(chat_key, transition, with_crypto=True)
        self._publish_on_partition(link, envelope)

    async def _answer(
        self,
        chat_key: str,
        *,
        accepted: bool,
        transition: RequestTransition | None,
        dropped: list[str] | None = None,
    ) -> None:
        """Tell them our decision inside the session their request opened."""
        link = self._contacts.links[chat_key]
        nonce = self._our_nonce(self.requests.get(chat_key)) if accepted else b""
        payload = direct_pb2.DirectPayload(
            answer=direct_pb2.ContactAnswerBody(
                accepted=accepted, link=self._ctx.me.contact_link(), pair_nonce=nonce
            )
        )
        envelope = self._olm.seal_to(link, payload)
        if accepted:
            await self._direct.ensure_chat(chat_key)
        await self._save_flow(chat_key, transition, with_crypto=True, dropped=dropped)
        self._publish_on_partition(link, envelope)

    @staticmethod
    def _our_nonce(flow: ContactRequest) -> bytes:
        """Our half of the pair secret (telemetry's 1:1 reference), made once per contact
        and saved with the flow before anything carrying it is published."""
        if flow.our_pair_nonce is None:
            flow.our_pair_nonce = secrets.token_hex(PAIR_NONCE_BYTES)
        return bytes.fromhex(flow.our_pair_nonce)

    def pair_secret(self, chat_key: str) -> bytes | None:
        """Both halves, in the order of the two chat keys (so both sides agree); None until
        both are known (a contact on an older version sends none)."""
        flow = self.requests.find(chat_key)
        if flow is None or flow.our_pair_nonce is None or flow.their_pair_nonce is None:
            return None
        ours = (self._ctx.me.chat_key_text, flow.our_pair_nonce)
        halves = sorted([ours, (chat_key, flow.their_pair_nonce)])
        return b"direct-pair\n" + b"".join(bytes.fromhex(nonce) for _, nonce in halves)

    def _publish_on_partition(self, link: ContactLink, envelope: Envelope) -> None:
        """On their contact-request partition; the flow re-sends, so a failure is only logged."""
        topic = contact_request_content_topic(link.chat_key)
        message = waku_message(topic, envelope.encode(), self._ctx.clock())
        self._publish.publish(self._pubsub_topic, message)

    async def _save_flow(
        self,
        chat_key: str,
        transition: RequestTransition | None,
        *,
        with_crypto: bool = False,
        dropped: list[str] | None = None,
    ) -> None:
        """The flow (and, `with_crypto`, the ratchet and account it moved; and the deletion
        of strangers' requests `dropped` to make room), then tell faces."""
        flow = self.requests.get(chat_key)
        link_text = self._contacts.link_texts.get(chat_key)
        now_ms = self._ctx.now_ms()
        data = flow_to_json(flow)
        state = flow.state.value if flow.state else None
        identity = self._ctx.me
        delete = _deleting(dropped or [])

        def save_flow(store: Store) -> None:
            store.contact_flows.save(
                chat_key, state=state, flow=data, their_link=link_text, now=now_ms
            )
            delete(store)

        def save_flow_and_account(store: Store) -> None:
            save_flow(store)
            save_identity(store, identity, now_ms)

        if with_crypto:
            await self._writer.save_crypto_now(also=save_flow_and_account)
        else:
            await self._ctx.db.run(_in_transaction(save_flow))
        if transition is not None:
            self._ctx.emit(ev.ContactUpdated(self.view(chat_key)))

    # ---- our partition (the Inbox) -----------------------------------------------------------
    def urgent(self, message: WakuMessage) -> bool:
        """From someone we chose (by the envelope's claim, before opening): handled before
        the strangers' backlog. A false claim only fails to decrypt."""
        try:
            envelope = Envelope.decode(message.payload)
        except DirectError:
            return False
        return self.strangers.chosen(envelope.sender_identity_key)

    def shed(self, message: WakuMessage) -> None:
        """A stranger's message dropped unopened: the receive queue for strangers was full."""
        self.strangers.shed()

    async def on_message(self, message: WakuMessage) -> None:
        try:
            envelope = Envelope.decode(message.payload)
        except DirectError as exc:
            self._ctx.reject(f"{exc} on {message.content_topic}")
            return
        if envelope.sender_identity_key == self._ctx.me.identity_key:
            return  # our own message, echoed by relay or listed by a store
        if not self.strangers.admit(envelope.sender_identity_key):
            return  # a stranger over the budget: dropped unopened (counted)
        try:
            opened = self._olm.open(message)
        except OpenRefused as exc:
            self._ctx.reject(exc.reason)
            return
        if opened is None:
            return
        body = opened.payload.WhichOneof("body")
        if body == "request":
            await self._on_request(opened)
        elif body == "answer":
            await self._on_answer(opened)
        elif body == "cancel":
            await self._on_cancel(opened)
        elif body == "group_invite":  # contacts invite on our 1:1 topic; this is a stranger
            self._ctx.reject("a group invitation from someone who is not a contact")
            self._writer.save_later(crypto=True)
        else:
            self._ctx.reject(f"a {body or 'empty'} payload on the wrong topic")
            self._writer.save_later(crypto=True)

    async def _on_request(self, opened: Opened) -> None:
        if REQUEST_ID.fullmatch(opened.payload.request.request_id) is None:
            # Refused before its sender is trusted: a stranger's session stays among the
            # unverified ones (bounded), and their link is not remembered.
            self._ctx.reject("a contact request without a valid request id")
            self._writer.save_later(crypto=True)
            return
        try:
            verified = self._olm.verify_request(opened)
        except DirectError as exc:
            self._ctx.reject(str(exc))
            self._writer.save_later(crypto=True)
            return
        link = verified.link
        if link.chat_key == self._ctx.me.chat_key:
            self._ctx.reject("a contact request from our own chat key")
            return
        chat_key = link.chat_key_text
        self._contacts.remember(link, opened.payload.request.link)
        try:
            transition = self.requests.received(
                chat_key, verified.intro, self._ctx.clock(), request_id=verified.request_id
            )
        except ContactRequestError as exc:
            self._ctx.reject(f"contact request from {chat_key[:16]}: {exc}")
            self._writer.save_later(crypto=True)
            return
        _note_their_nonce(self.requests.get(chat_key), opened.payload.request.pair_nonce)
        dropped = self.strangers.moved(chat_key, transition.event)
        if transition.new is MUTUAL:
            # Crossed requests, or a re-send of a request we accepted whose answer was lost:
            # answer (again), so they reach mutual too.
            await self._answer(chat_key, accepted=True, transition=transition, dropped=dropped)
            return
        if self.requests.get(chat_key).open and self._early_withdrawals.take(
            opened.sender_identity_key, verified.request_id, self._ctx.clock()
        ):
            # Its withdrawal came first: the request arrives withdrawn.
            transition = self.requests.withdrawn(chat_key, self._ctx.clock())
            dropped += self.strangers.moved(chat_key, transition.event)
        await self._save_flow(chat_key, transition, with_crypto=True, dropped=dropped)

    async def _on_answer(self, opened: Opened) -> None:
        chat_key = self._contacts.by_identity_key.get(opened.sender_identity_key)
        if chat_key is None:
            self._ctx.reject("an answer from someone we never asked")
            self._writer.save_later(crypto=True)
            return
        answer = opened.payload.answer
        flow = self.requests.find(chat_key)
        if flow is not None and answer.accepted:  # before the chat exists: its reference
            _note_their_nonce(flow, answer.pair_nonce)
        old_name = self._contacts.display_name(chat_key) or ""
        with contextlib.suppress(IdentityError):
            link = ContactLink.parse(answer.link)
            if link.chat_key_text == chat_key and link.identity_key == opened.sender_identity_key:
                self._contacts.remember(link, answer.link)
        now = self._ctx.clock()
        try:
            if answer.accepted:
                transition = self.requests.accepted(chat_key, now)
            else:
                transition = self.requests.declined(chat_key, now)
        except ContactRequestError as exc:
            log.info("answer from %s ignored: %s", chat_key[:16], exc)
            self._writer.save_later(crypto=True)
            return
        if transition.new is MUTUAL:
            chat_id = await self._direct.ensure_chat(chat_key)
            if self._contacts.display_name(chat_key) != old_name:  # they renamed themselves
                self._ctx.emit(ev.ChatUpdated(await self._direct.chat_view(chat_id)))
        await self._save_flow(chat_key, transition, with_crypto=True)

    async def _on_cancel(self, opened: Opened) -> None:
        """They withdrew their request. Only their current request can be withdrawn: the
        withdrawal of an older one (crossed by a new request) changes nothing."""
        self._writer.save_later(crypto=True)
        chat_key = self._contacts.by_identity_key.get(opened.sender_identity_key)
        flow = self.requests.find(chat_key) if chat_key is not None else None
        request_id = opened.payload.cancel.request_id
        if chat_key is None or flow is None or flow.request_id != request_id:
            # Maybe its request has not come yet: it is withdrawn when it does.
            self._early_withdrawals.add(opened.sender_identity_key, request_id, self._ctx.clock())
            log.info("a withdrawal of a request we do not hold (yet), kept a while")
            return
        try:
            transition = self.requests.withdrawn(chat_key, self._ctx.clock())
        except ContactRequestError as exc:
            log.info("withdrawal from %s ignored: %s", chat_key[:16], exc)
            return
        dropped = self.strangers.moved(chat_key, transition.event)
        await self._save_flow(chat_key, transition, with_crypto=True, dropped=dropped)

    # ---- the timed feature: re-sends and expiry ----------------------------------------------
    def next_wakeup(self) -> float | None:
        return self.requests.next_wakeup()

    async def run_due(self, now: float) -> None:
        resend, expired = self.requests.due(now)
        for flow in resend:
            if flow.chat_key in self._contacts:
                await self._send_request(flow.chat_key, self.requests.resent(flow.chat_key, now))
        for transition in expired:
            owner = next(
                (f for f in self.requests.all() if f.history and f.history[-1] is transition),
                None,
            )
            if owner is not None:
                self.strangers.moved(owner.chat_key, transition.event)
                await self._save_flow(owner.chat_key, transition)


def _note_their_nonce(flow: ContactRequest, nonce: bytes) -> None:
    """Their half of the pair secret, from a message Olm proved is theirs; anything but 32
    bytes (an older version sends none) leaves what we had."""
    if len(nonce) == PAIR_NONCE_BYTES:
        flow.their_pair_nonce = nonce.hex()


def _in_transaction(write: Callable[[Store], None]) -> Callable[[Store], None]:
    def run(store: Store) -> None:
        with store.db.transaction():
            write(store)

    return run


def _deleting(chat_keys: list[str]) -> Callable[[Store], None]:
    """Deletes the flows of strangers whose requests were dropped (their sessions' rows go
    with the Olm changes of the same save)."""

    def delete(store: Store) -> None:
        if chat_keys:
            store.contact_flows.delete(chat_keys)

    return delete
