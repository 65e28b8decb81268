"""A private group's parts for the pipeline: its crypto (Megolm for the frames, Olm for the
keys) and its membership (the log's joined members).

Sealing a frame: our outbound session (a new one first when the rotation policy says so,
chat/groups/keys.py) encrypts it; every member who has not confirmed holding that session
gets its key in the same envelope, pairwise over Olm (a `Share`), with the changes that make
us a member if they may not know them, and a removed member gets the removal. The key at
its current index goes before the frame it encrypts, so it never opens anything earlier.

Opening an envelope: our share first (if there is one: a pre-check names the sender as a
member or invitee by the Olm identity key in the log, before anything is decrypted), then
the frame, with the session of the member whose Olm session delivered its key. Refused,
logged and never shown: a tampered or replayed frame, a share from someone not in the
group, a frame from a session whose owner is not a member (removed, left). A frame of a
session we do not hold (sent before we joined, after we left, or whose key is late) is
counted as undecryptable and logged; its sender re-sends it with our key until we
acknowledge it, if we are a member.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chat.direct import DirectError, Envelope
from chat.groups.changes import Change
from chat.groups.keys import NoSession, OutboundSession, Refused
from chat.groups.wire import GroupEnvelope, GroupWireError, Share
from chat.identity import ContactLink, IdentityError
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import OpenRefused, SealFailed, Unsealed
from chat.messenger.group_state import Group
from chat.messenger.olm import OlmCrypto
from chat.proto import direct_pb2, group_pb2
from chat.reliability.sds import SdsChannel, SdsError, SdsFrame
from chat.waku.message import WakuMessage

log = logging.getLogger(__name__)

MAX_SHARE_CHANGES = 10
"""Changes one share may carry: our proof (2), the newest changes since the recipient's
invitation, a removal; more are not read (a member who lacks more learns them from the
frames that follow). With the key and a link a share stays under ~22 KB."""
CATCH_UP_CHANGES = 6
"""Of those, the newest changes made since the recipient's invitation."""
ENVELOPE_BUDGET = 120 * 1024
"""Bytes of shares one envelope carries at most (a WakuMessage is at most 150 KiB): past it,
shares go without catch-up changes, and the rest with the next envelopes."""
HORIZON = 16
"""SDS ids a share names as unreadable: our newest ones, which our next frames depend on
(a content frame names the last 2, a sync up to 16)."""
NOT_A_MEMBER = "you are not a member of this group any more"

Learn = Callable[[Group, bytes, str], Change | None]
"""Take a signed change into a group's log (decode, verify, add; refuse with a reason);
the last argument says where it came from, for the log line."""


class GroupMembership:
    """The log's joined members; every one of them must acknowledge a message."""

    def __init__(self, group: Group) -> None:
        self._group = group

    def member_of(self, sender_key: bytes) -> str | None:
        member = self._group.member_by_identity(sender_key, invited=False)
        return member.chat_key if member is not None else None

    def members(self) -> frozenset[str]:
        return self._group.state.joined() - {self._group.own}

    def acknowledged(self, member: str, message_id: str) -> None:
        self._group.keys.acknowledged(member, message_id)


class GroupCrypto:
    name = "Megolm"

    def __init__(
        self,
        ctx: MessengerContext,
        group: Group,
        olm: OlmCrypto,
        learn: Learn,
        save_later: Callable[[], None],
        channel: Callable[[], SdsChannel | None],
    ) -> None:
        self._ctx = ctx
        self._group = group
        self._olm = olm
        self._learn = learn
        self._save_later = save_later
        self._channel = channel

    # ---- sealing -----------------------------------------------------------------------------
    def seal(self, frame: bytes) -> bytes:
        group = self._group
        try:
            sds = SdsFrame.decode(frame)
        except SdsError as exc:
            raise SealFailed(f"not an SDS frame: {exc}", permanent=True) from None
        if not group.joined and sds.message_id not in group.keys.farewell:
            raise SealFailed(NOT_A_MEMBER, permanent=True)
        now = self._ctx.clock()
        content = bool(sds.content)
        session, reason = group.keys.session_for(content=content, now=now)
        if reason is not None:
            log.info("group %s: a new Megolm session (%s)", group.id[:8], reason)
        others = group.state.joined() - {group.own}
        need = session.needs_key(others, now, group.keys.policy.reshare_after)
        notices = group.take_notices()
        shares: list[Share] = []
        budget = ENVELOPE_BUDGET
        for member in sorted(set(need) | set(notices)):
            keyed = session if member in need else None
            share = self._share(member, keyed, notices.get(member), catch_up=budget > 0)
            if share is None or len(share.envelope) > budget:
                need = [m for m in need if m != member]  # it goes with a later envelope
                continue
            shares.append(share)
            budget -= len(share.envelope) + 40
        group.keys.shared(session, need, now)
        ciphertext = group.keys.encrypt(session, sds.message_id, frame, content=content)
        return GroupEnvelope(session.id, ciphertext, tuple(shares)).encode()

    def _share(
        self,
        member: str,
        session: OutboundSession | None,
        notices: list[Change] | None,
        *,
        catch_up: bool,
    ) -> Share | None:
        """One member's pairwise body: our session key (if they need it), our proof and link
        (if they may not know us), and notices; None if we cannot reach them (no link)."""
        group = self._group
        link = group.link_of(member)
        if link is None:
            log.warning("group %s: no contact link for %s", group.id[:8], member[:16])
            return None
        body = group_pb2.GroupShareBody(group_id=group.id)
        changes = list(notices or [])
        if session is not None:
            body.session_id = session.id
            body.session_key = session.session.session_key.to_base64()
            channel = self._channel()
            if channel is not None:
                body.horizon.extend(channel.recent_ids(HORIZON))
            if member not in group.keys.known_to:
                body.link = self._ctx.me.contact_link()
                missed = group.since_invitation(member)[-CATCH_UP_CHANGES:] if catch_up else []
                changes = group.proofs() + missed + changes
        for change in changes[:MAX_SHARE_CHANGES]:
            body.changes.add().ParseFromString(change.signed)
        payload = direct_pb2.DirectPayload(group_share=body)
        try:
            envelope = self._olm.seal_to(link, payload)
        except DirectError as exc:
            log.warning("group %s: cannot seal a share for %s: %s", group.id[:8], member[:16], exc)
            return None
        return Share(link.identity_key, envelope.encode())

    # ---- opening -----------------------------------------------------------------------------
    def open(self, message: WakuMessage) -> Unsealed | None:
        group = self._group
        try:
            envelope = GroupEnvelope.decode(message.payload)
        except GroupWireError as exc:
            raise OpenRefused(f"{exc} on {message.content_topic}") from None
        if group.keys.is_own(envelope.session_id):
            return None  # our own message, echoed by relay or listed by a store
        own_key = self._ctx.me.identity_key
        for share in envelope.shares:
            if share.recipient_identity_key == own_key:
                self._take_share(share)
                break
        try:
            opened = group.keys.decrypt(envelope.session_id, envelope.ciphertext)
        except NoSession as exc:
            group.undecryptable += 1
            log.info("group %s: cannot decrypt a message (%s)", group.id[:8], exc)
            self._save_later()
            return None
        except Refused as exc:
            raise OpenRefused(str(exc)) from None
        if not group.state.is_member(opened.owner):
            self._save_later()
            raise OpenRefused(
                f"a group message from {opened.owner[:16]}…, who is not a member of this group"
            )
        horizon, group.horizon = tuple(group.horizon), []
        return Unsealed(opened.owner_identity_key, opened.plaintext, assume_delivered=horizon)

    def _take_share(self, share: Share) -> None:
        """Our pairwise body in an envelope: refused (logged) unless its sender is in the
        group; its changes go to the log, its session key to the sessions."""
        group = self._group
        try:
            envelope = Envelope.decode(share.envelope)
        except DirectError as exc:
            self._ctx.reject(f"a group key share that is not an Olm envelope: {exc}")
            return
        sender = group.member_by_identity(envelope.sender_identity_key)
        if sender is None:
            self._ctx.reject("a group key share from someone who is not in this group")
            return
        try:
            opened = self._olm.open_envelope(envelope)
        except OpenRefused as exc:
            self._ctx.reject(f"a group key share that does not open: {exc.reason}")
            return
        self._olm.vouch(envelope.sender_identity_key)
        self._save_later()
        if opened.payload.WhichOneof("body") != "group_share":
            self._ctx.reject("a group share whose payload is not a key share")
            return
        body = opened.payload.group_share
        if body.group_id != group.id:
            self._ctx.reject("a group key share for another group")
            return
        for signed in body.changes[:MAX_SHARE_CHANGES]:
            self._learn(group, signed.SerializeToString(), "a key share")
        group.horizon = [*group.horizon, *body.horizon[:HORIZON]][-4 * HORIZON :]
        if body.link:
            self._fresh_link(sender.chat_key, body.link, envelope.sender_identity_key)
        if not body.session_id:
            return
        if not group.state.is_member(sender.chat_key):
            self._ctx.reject("a session key from someone who is not a member of this group")
            return
        try:
            group.keys.add_inbound(
                body.session_id,
                body.session_key,
                sender.chat_key,
                envelope.sender_identity_key,
                self._ctx.clock(),
            )
        except Refused as exc:
            self._ctx.reject(str(exc))

    def _fresh_link(self, chat_key: str, text: str, identity_key: bytes) -> None:
        """A member's current link (a fresher fallback key and name than the log's)."""
        try:
            link = ContactLink.parse(text)
        except IdentityError as exc:
            log.info("group %s: a member's link does not parse (%s)", self._group.id[:8], exc)
            return
        if link.chat_key_text == chat_key and link.identity_key == identity_key:
            self._group.links[chat_key] = link
