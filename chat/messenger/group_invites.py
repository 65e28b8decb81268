"""Group invitations on the wire: the flows of chat/groups/invites.py (sans-IO) driven with
Olm, the 1:1 topics and the profile DB.

- An invitation goes to a contact inside our Olm session, on our 1:1 chat's topic, with the
  group's whole log (the invitee checks it: its root hashes to the group id, every change is
  signed, and the log invites them from us). It goes again on the flow's visible schedule
  until they answer, we withdraw it (remove them), it expires, or no copy reached any peer
  within the budget (failed, with the reason). The 1:1 topic is scanned from the store, so
  an invitee who was offline gets it when they return.
- Accepting joins the group (groups.py `join`): our signed `joined` goes to the group in a
  frame, with our session key for every member; the inviter is answered on the 1:1 topic
  too. Declining answers the inviter with our signed `declined`, which they put in the
  group's log and tell the group. A copy of an invitation we answered gets the answer again.
- Only contacts invite: an invitation arrives inside the session of a 1:1 chat (a mutual
  contact); one on the contact-request topic (a stranger) is refused there.
- Every step is saved (with the ratchet it moved) before anything is published.
"""

from __future__ import annotations

import logging

from chat import events as ev
from chat.direct import DirectError, Opened, conversation_content_topic
from chat.groups import changes as ch
from chat.groups.changes import Change, ChangeError, ChangeKind
from chat.groups.invites import (
    FAILED,
    INVITED,
    SENT,
    Direction,
    Invite,
    InviteError,
    InvitePolicy,
    Invites,
    InviteState,
    InviteTransition,
    invite_from_json,
    invite_to_json,
)
from chat.groups.log import MAX_LOG_ENTRIES, LogError, MembershipLog, MemberState
from chat.messenger.contact_book import ContactBook
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import PublishFailed, Transport, waku_message
from chat.messenger.direct_chats import DirectChats
from chat.messenger.group_state import Group
from chat.messenger.groups import GroupChats
from chat.messenger.olm import OlmCrypto
from chat.messenger.persist import StateWriter
from chat.proto import direct_pb2, group_pb2
from storage.repositories.groups import StoredInvite
from storage.store import Store

log = logging.getLogger(__name__)


class GroupInvitesFlow:
    def __init__(
        self,
        ctx: MessengerContext,
        contacts: ContactBook,
        olm: OlmCrypto,
        writer: StateWriter,
        transport: Transport,
        direct: DirectChats,
        groups: GroupChats,
        policy: InvitePolicy,
    ) -> None:
        self._ctx = ctx
        self._contacts = contacts
        self._olm = olm
        self._writer = writer
        self._transport = transport
        self._direct = direct
        self._groups = groups
        self.policy = policy
        self.invites = Invites(policy)
        direct.handle("group_invite", self._on_invite)
        direct.handle("group_invite_answer", self._on_answer)
        direct.handle("group_invite_cancel", self._on_cancel)

    def restore(self, stored: list[StoredInvite]) -> None:
        for row in stored:
            try:
                self.invites.restore(invite_from_json(row.id, row.flow))
            except InviteError as exc:
                log.warning("invitation %s: %s", row.id[:8], exc)

    # ---- views -------------------------------------------------------------------------------
    def view(self, invite: Invite) -> ev.InviteView:
        me = self._ctx.me.chat_key_text
        sent = invite.direction is SENT
        updated = invite.history[-1].at if invite.history else invite.created_at
        return ev.InviteView(
            id=invite.id,
            group_id=invite.group_id,
            name=invite.group_name,
            from_=me if sent else invite.peer,
            to=invite.peer if sent else me,
            direction=invite.direction.value,
            state=invite.state.value if invite.state else "invited",
            expires_at=invite.expires_at,
            reason=invite.reason,
            created_at=invite.created_at,
            updated_at=updated,
            next_send_at=invite.next_send_at,
            sends=invite.sends,
        )

    def views(self) -> list[ev.InviteView]:
        ordered = sorted(self.invites.all(), key=lambda i: i.created_at, reverse=True)
        return [self.view(i) for i in ordered]

    def outbox_items(self) -> list[ev.OutboxItemView]:
        """Our invitations still waiting for an answer (or failed)."""
        return [
            ev.OutboxItemView(
                id=invite.id,
                kind="group_invite",
                chat_id=invite.group_id,
                summary=f"invitation to {invite.group_name} for "
                f"{self._contacts.display_name(invite.peer) or invite.peer[:16]}",
                state=invite.state.value,
                reason=invite.reason,
                attempts=invite.sends,
                max_attempts=0,
                next_attempt_at=invite.next_send_at,
                created_at=invite.created_at,
            )
            for invite in self.invites.all()
            if invite.direction is SENT and invite.state in (INVITED, FAILED)
        ]

    def open_sent(self, group_id: str, chat_key: str) -> Invite | None:
        return self.invites.open_for(group_id, chat_key)

    # ---- our invitations ---------------------------------------------------------------------
    async def send(self, group: Group, change: Change) -> None:
        """A new invitation (its `invited` change is in the log): save it, send its first copy."""
        assert change.expires_at is not None
        transition = self.invites.send(
            change.id, group.id, change.subject, group.state.name, change.expires_at, change.at
        )
        await self._send_copy(self._require(change.id), transition)

    async def send_again(self, invite_id: str) -> None:
        """A failed invitation goes again, with a fresh budget."""
        invite = self._require(invite_id)
        try:
            transition = self.invites.send(
                invite.id, invite.group_id, invite.peer, invite.group_name,
                invite.expires_at or 0.0, self._ctx.clock(),
            )  # fmt: skip
        except InviteError as exc:
            raise ev.NotPossible(f"they are invited already ({exc})") from None
        await self._send_copy(invite, transition)

    async def _send_copy(self, invite: Invite, transition: InviteTransition | None) -> None:
        """One copy on our 1:1 topic with them: saved with the ratchet, then published; how
        it went is the flow's next step."""
        group = self._groups.groups.get(invite.group_id)
        link = self._contacts.link(invite.peer)
        if group is None or link is None:
            return
        body = group_pb2.GroupInviteBody(invite_id=invite.id, group_id=group.id)
        for change in group.log.changes()[:MAX_LOG_ENTRIES]:
            body.log.add().ParseFromString(change.signed)
        envelope = self._olm.seal_to(link, direct_pb2.DirectPayload(group_invite=body))
        await self._save(invite, transition, with_crypto=True)
        reached, reason = self._publish_to(invite.peer, envelope.encode())
        step = self.invites.sent(invite.id, self._ctx.clock(), reached=reached, reason=reason)
        await self._save(invite, step)

    def _publish_to(self, chat_key: str, payload: bytes) -> tuple[bool, str]:
        """On our 1:1 topic with them; (whether a peer took it, why not)."""
        topic = conversation_content_topic(self._direct.chat_id_with(chat_key))
        message = waku_message(topic, payload, self._ctx.clock())
        try:
            self._transport.publish(self._direct.pubsub_topic, message)
        except PublishFailed as exc:
            return False, exc.reason
        return True, ""

    async def cancel(self, group_id: str, chat_key: str) -> None:
        """We removed an invitee: our open invitation is withdrawn, and they are told."""
        invite = self.invites.open_for(group_id, chat_key)
        if invite is None:
            return
        transition = self.invites.cancel(invite.id, self._ctx.clock())
        link = self._contacts.link(chat_key)
        if link is None:
            await self._save(invite, transition)
            return
        body = group_pb2.GroupInviteCancelBody(invite_id=invite.id, group_id=group_id)
        envelope = self._olm.seal_to(link, direct_pb2.DirectPayload(group_invite_cancel=body))
        await self._save(invite, transition, with_crypto=True)
        self._publish_to(chat_key, envelope.encode())

    async def answered_in_log(self, group: Group) -> None:
        """Our invitations the group's log shows answered (their joined or declined)."""
        for invite in self.invites.all():
            if invite.group_id != group.id or invite.direction is not SENT:
                continue
            member = group.state.member(invite.peer)
            if member is None or member.invite_id != invite.id:
                continue
            if member.state in (MemberState.JOINED, MemberState.DECLINED):
                accepted = member.state is MemberState.JOINED
                try:
                    transition = self.invites.answered(
                        invite.id, self._ctx.clock(), accepted=accepted
                    )
                except InviteError:
                    continue
                await self._save(invite, transition)

    # ---- invitations to us -------------------------------------------------------------------
    async def accept(self, invite_id: str) -> ev.InviteView:
        invite = self._received(invite_id)
        group_log = self._log_of(invite)
        now = self._ctx.clock()
        try:
            transition = self.invites.accept(invite.id, now)
        except InviteError as exc:
            raise ev.NotPossible(str(exc)) from None
        me = self._ctx.me
        joined = ch.joined(
            me,
            invite.group_id,
            group_log.next_lamport(),
            invite.id,
            now,
            parents=group_log.heads(),
        )
        await self._save(invite, transition)
        await self._groups.join(group_log, joined)
        await self._answer(invite, joined, accepted=True)
        return self.view(invite)

    async def decline(self, invite_id: str) -> ev.InviteView:
        invite = self._received(invite_id)
        group_log = self._log_of(invite)
        now = self._ctx.clock()
        try:
            transition = self.invites.decline(invite.id, now)
        except InviteError as exc:
            raise ev.NotPossible(str(exc)) from None
        declined = ch.declined(
            self._ctx.me,
            invite.group_id,
            group_log.next_lamport(),
            invite.id,
            now,
            parents=group_log.heads(),
        )
        await self._save(invite, transition)
        await self._answer(invite, declined, accepted=False)
        return self.view(invite)

    def _received(self, invite_id: str) -> Invite:
        invite = self.invites.get(invite_id[:64])
        if invite is None or invite.direction is not Direction.RECEIVED:
            raise ev.NotFound(f"no invitation {invite_id[:64]}")
        return invite

    def _log_of(self, invite: Invite) -> MembershipLog:
        try:
            changes = [ch.decode_change(c, invite.group_id) for c in invite.log]
            return MembershipLog.from_changes(changes)
        except (ChangeError, LogError) as exc:
            raise ev.NotPossible(f"the invitation's group log is unreadable: {exc}") from None

    async def _answer(self, invite: Invite, change: Change, *, accepted: bool) -> None:
        """Our answer (with our signed change) to the inviter, on our 1:1 topic."""
        link = self._contacts.link(invite.peer)
        if link is None:
            return
        body = group_pb2.GroupInviteAnswerBody(invite_id=invite.id, accepted=accepted)
        body.change.ParseFromString(change.signed)
        envelope = self._olm.seal_to(link, direct_pb2.DirectPayload(group_invite_answer=body))
        await self._writer.save_crypto_now()
        self._publish_to(invite.peer, envelope.encode())

    # ---- what contacts send us on our 1:1 topics (DirectChats handlers; under the lock) ------
    async def _on_invite(self, opened: Opened, chat_key: str) -> None:
        self._writer.save_later(crypto=True)
        body = opened.payload.group_invite
        if len(body.log) > MAX_LOG_ENTRIES:
            self._ctx.reject(f"an invitation whose log has {len(body.log)} changes")
            return
        try:
            changes = [ch.decode_change(c.SerializeToString(), body.group_id) for c in body.log]
            group_log = MembershipLog.from_changes(changes)
        except (ChangeError, LogError) as exc:
            self._ctx.reject(f"an invitation from {chat_key[:16]}… with a bad log: {exc}")
            return
        me = group_log.state.member(self._ctx.me.chat_key_text)
        if me is None or me.state is not MemberState.INVITED or me.invite_id != body.invite_id:
            self._ctx.reject(f"an invitation from {chat_key[:16]}… whose log does not invite us")
            return
        if me.invited_by != chat_key:
            self._ctx.reject(f"an invitation from {chat_key[:16]}… made by someone else")
            return
        held = self.invites.get(body.invite_id)
        now = self._ctx.clock()
        try:
            transition = self.invites.received(
                body.invite_id, body.group_id, chat_key, group_log.state.name,
                me.expires_at or now, [c.signed for c in changes], now,
            )  # fmt: skip
        except InviteError as exc:
            log.info("invitation %s ignored: %s", body.invite_id[:8], exc)
            return
        if held is not None and held.state in (InviteState.JOINED, InviteState.DECLINED):
            await self._answer_again(held, group_log)  # our answer did not reach them
            return
        await self._save(held or self._require(body.invite_id), transition)

    async def _answer_again(self, invite: Invite, group_log: MembershipLog) -> None:
        group = self._groups.groups.get(invite.group_id)
        source = group.log if group is not None else group_log
        kind = ChangeKind.JOINED if invite.state is InviteState.JOINED else ChangeKind.DECLINED
        mine = [
            c
            for c in source.changes()
            if c.kind is kind
            and c.author == self._ctx.me.chat_key_text
            and c.invite_id == invite.id
        ]
        if mine:
            await self._answer(invite, mine[-1], accepted=kind is ChangeKind.JOINED)

    async def _on_answer(self, opened: Opened, chat_key: str) -> None:
        self._writer.save_later(crypto=True)
        body = opened.payload.group_invite_answer
        invite = self.invites.get(body.invite_id)
        if invite is None or invite.direction is not SENT or invite.peer != chat_key:
            self._ctx.reject(f"an answer from {chat_key[:16]}… to an invitation we did not send")
            return
        group = self._groups.groups.get(invite.group_id)
        if group is None:
            return
        change = self._groups.learn(
            group, body.change.SerializeToString(), "an invitation's answer"
        )
        if change is None:
            return
        if change.author != chat_key or change.invite_id != invite.id:
            self._ctx.reject(f"an answer from {chat_key[:16]}… that is not theirs to give")
            return
        if change.kind is ChangeKind.DECLINED and group.joined:
            await self._groups.relay(group, change)  # the group learns it from us
        try:
            transition = self.invites.answered(
                invite.id, self._ctx.clock(), accepted=change.kind is ChangeKind.JOINED
            )
        except InviteError:
            return  # answered before
        await self._save(invite, transition)

    async def _on_cancel(self, opened: Opened, chat_key: str) -> None:
        self._writer.save_later(crypto=True)
        body = opened.payload.group_invite_cancel
        invite = self.invites.get(body.invite_id)
        if invite is None or invite.direction is SENT or invite.peer != chat_key:
            log.info("a withdrawal of an invitation we do not hold, ignored")
            return
        try:
            transition = self.invites.withdrawn(invite.id, self._ctx.clock())
        except InviteError as exc:
            log.info("withdrawal of invitation %s ignored: %s", invite.id[:8], exc)
            return
        await self._save(invite, transition)

    # ---- the timed feature: re-sends and expiry ----------------------------------------------
    def next_wakeup(self) -> float | None:
        return self.invites.next_wakeup()

    async def run_due(self, now: float) -> None:
        resend, expired = self.invites.due(now)
        for invite in resend:
            try:
                await self._send_copy(invite, None)
            except DirectError as exc:
                log.warning("invitation %s: cannot seal a copy: %s", invite.id[:8], exc)
        for invite, transition in expired:
            await self._save(invite, transition)

    # ---- saving ------------------------------------------------------------------------------
    def _require(self, invite_id: str) -> Invite:
        invite = self.invites.get(invite_id)
        if invite is None:
            raise ev.NotFound(f"no invitation {invite_id[:64]}")
        return invite

    async def _save(
        self, invite: Invite, transition: InviteTransition | None, *, with_crypto: bool = False
    ) -> None:
        """The flow (and, `with_crypto`, the ratchet it moved), then tell the faces."""
        data = invite_to_json(invite)
        state = invite.state.value if invite.state else None
        now_ms = self._ctx.now_ms()

        def save(store: Store) -> None:
            store.group_invites.save(
                invite.id, group_id=invite.group_id, direction=invite.direction.value,
                peer=invite.peer, state=state, flow=data, now=now_ms,
            )  # fmt: skip

        if with_crypto:
            await self._writer.save_crypto_now(also=save)
        else:
            await self._ctx.db.run(save)
        if transition is not None or with_crypto:
            self._ctx.emit(ev.InviteUpdated(self.view(invite)))
