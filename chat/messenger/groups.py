"""Private groups: the second conversation kind on the pipeline.

A group is a conversation whose parts are (group_crypto.py):
- crypto: Megolm, one outbound session per member, its key shared pairwise over Olm in the
  envelopes themselves (`GroupCrypto`);
- membership: the joined members of the group's membership log (chat/groups/log.py): every
  one of them must acknowledge a message for it to be delivered (`GroupMembership`);
- content: a frame carries a chat message or a signed membership change; a change goes into
  the log and shows as a system line ("Bob joined"), whatever path it came by (a frame, a
  key share, an answer): the line's id is the change's id, so it shows once.

This module holds the groups (group_state.py) and gives the façade its commands: create,
rename, add, remove, make admin, leave, send. Every change we make is checked against the
log's rules first, then committed with its frame (the frame's outbox entry, the change's log
row) before anything is published; invitations go through group_invites.py. When the member
list moves (by any path: a frame, a key share, an invitation), the pipeline hears of it on
the next pass of the scheduler: messages that waited only for members who left are
delivered, our session rotates past them, and the faces get the new view.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from chat import events as ev
from chat.contacts import MUTUAL, ContactRequests
from chat.groups import changes as ch
from chat.groups.changes import Change, ChangeError, ChangeKind
from chat.groups.log import (
    MAX_MEMBERS,
    GroupState,
    LogError,
    Member,
    MembershipLog,
    MemberState,
    apply,
)
from chat.groups.wire import GroupContent, GroupWireError, group_content_topic
from chat.history import ChatHistory
from chat.identity import IdentityError, parse_chat_key
from chat.messenger.channels import SdsChannels
from chat.messenger.config import MAX_MESSAGE_ID_LENGTH
from chat.messenger.contact_book import ContactBook
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import Content, Conversation, Conversations, Unsealed
from chat.messenger.group_crypto import NOT_A_MEMBER, GroupCrypto, GroupMembership
from chat.messenger.group_state import Group, Groups
from chat.messenger.olm import OlmCrypto
from chat.messenger.persist import StateWriter
from chat.messenger.receive import chat_message
from chat.messenger.sending import Sending
from chat.messenger.syncs import Syncs
from chat.proto import direct_pb2
from storage.repositories.conversations import Conversation as StoredConversation
from storage.repositories.messages import StoredMessage
from storage.store import Store

if TYPE_CHECKING:
    from chat.messenger.group_invites import GroupInvitesFlow

log = logging.getLogger(__name__)

KIND = "group"
WatchTopic = Callable[[str, str], Awaitable[None]]


def system_text(state: GroupState, change: Change) -> str:
    """A change as a line in the conversation, with the names the log knows."""

    def name(chat_key: str) -> str:
        member = state.member(chat_key)
        return member.display_name if member and member.display_name else chat_key[:14] + "…"

    author, subject = name(change.author), name(change.subject) if change.subject else ""
    return {
        ChangeKind.CREATED: f"{author} created the group “{change.name}”",
        ChangeKind.INVITED: f"{author} invited {subject}",
        ChangeKind.JOINED: f"{author} joined",
        ChangeKind.DECLINED: f"{author} declined the invitation",
        ChangeKind.LEFT: f"{author} left",
        ChangeKind.REMOVED: f"{author} removed {subject}",
        ChangeKind.RENAMED: f"{author} renamed the group to “{change.name}”",
        ChangeKind.ADMIN_GRANTED: f"{author} made {subject} an admin",
    }[change.kind]


def _message_at(rowid: int) -> Callable[[Store], StoredMessage | None]:
    return lambda store: store.messages.get(rowid)


class GroupChats:
    def __init__(
        self,
        ctx: MessengerContext,
        contacts: ContactBook,
        requests: ContactRequests,
        olm: OlmCrypto,
        conversations: Conversations,
        sending: Sending,
        syncs: Syncs,
        channels: SdsChannels,
        history: ChatHistory,
        writer: StateWriter,
        groups: Groups,
        watch: WatchTopic,
        pubsub_topic: str,
    ) -> None:
        self._ctx = ctx
        self._contacts = contacts
        self._requests = requests
        self._olm = olm
        self._conversations = conversations
        self._sending = sending
        self._syncs = syncs
        self._channels = channels
        self._history = history
        self._writer = writer
        self.groups = groups
        self._watch = watch
        self.pubsub_topic = pubsub_topic
        self.invites: GroupInvitesFlow | None = None
        """Set by the façade: invitations go out through it."""

    # ---- conversations -----------------------------------------------------------------------
    def restore(self, stored: list[StoredConversation]) -> None:
        for conv in stored:
            group = self.groups.get(conv.id) if conv.kind == KIND else None
            if group is not None:
                self._register(group, conv.content_topic)

    def conversations(self) -> list[Conversation]:
        return self._conversations.of_kind(KIND)

    def _register(self, group: Group, content_topic: str) -> None:
        crypto = GroupCrypto(
            self._ctx,
            group,
            self._olm,
            self.learn,
            self._writer.save_later,
            lambda: self._channels.loaded_channel(group.id),
        )
        self._conversations.add(
            Conversation(
                id=group.id,
                kind=KIND,
                pubsub_topic=self.pubsub_topic,
                content_topic=content_topic,
                crypto=crypto,
                membership=GroupMembership(group),
                on_control=self._on_control,
                read_content=self._read_content,
            )
        )

    async def _open_conversation(self, group: Group) -> None:
        """The group's chat: its row (with the log so far), the pipeline's parts, its topic
        watched from now on."""
        topic = group_content_topic(group.id)
        now_ms = self._ctx.now_ms()
        conv = StoredConversation(
            group.id, KIND, group.state.name, self.pubsub_topic, topic, now_ms, now_ms
        )
        changes = [(c.id, c.lamport, c.signed) for c in group.log.changes()]

        def add(store: Store) -> None:
            with store.db.transaction():
                if store.conversations.get(group.id) is None:
                    store.conversations.add(conv)
                store.groups.add_changes(group.id, changes, now=now_ms)

        await self._ctx.db.run(add)
        self._register(group, topic)
        await self._watch(self.pubsub_topic, topic)

    def group(self, group_id: str) -> Group:
        group = self.groups.get(group_id[:64])
        if group is None or self._conversations.get(group.id) is None:
            raise ev.NotFound(f"no group {group_id[:32]}")
        return group

    # ---- learning changes (under the lock) ---------------------------------------------------
    def learn(self, group: Group, signed: bytes, via: str) -> Change | None:
        """A signed change from the network into the log: refused and logged if it does not
        verify or the log cannot take it, logged if it breaks a rule at its place (it stays
        in the log, ignored). Returns the change if it applies."""
        try:
            change = ch.decode_change(signed, group.id)
        except ChangeError as exc:
            self._ctx.reject(f"a membership change in {via}: {exc}")
            return None
        try:
            added = group.learn(change, untrusted=True)
        except LogError as exc:
            self._ctx.reject(f"a membership change in {via}: {exc}")
            return None
        if added.new:
            self._writer.save_later()
            group.tell_our_invitees(change)
            if added.ignored is None and group.joined:
                group.lines.append(change)
                group.moved = True
            if added.ignored is not None:
                self._ctx.reject(
                    f"a '{change.kind.value}' change by {change.author[:16]}… in {via} is "
                    f"ignored: {added.ignored}"
                )
        if group.moved:
            self._ctx.emit(ev.GroupUpdated(self.view(group)))
            self._ctx.wake_scheduler()
        return change if added.ignored is None else None

    async def _read_content(
        self, conversation: Conversation, content: bytes, message_id: str, sender: str
    ) -> Content | None:
        group = self.groups.get(conversation.id)
        try:
            body = GroupContent.decode(content)
        except GroupWireError as exc:
            self._ctx.reject(str(exc))
            return None
        if group is None:
            return None
        if body.message:
            return chat_message(self._ctx, body.message, message_id)
        change = self.learn(group, body.change, "a group frame")
        if change is None:
            return None
        text = system_text(group.state, change)
        return Content(change.id, text, int(change.at * 1000), kind="system")

    async def _on_control(self, conversation: Conversation, unsealed: Unsealed) -> None:
        self._ctx.reject("a group message that is not an SDS frame")

    # ---- reacting to a moved member list (the timed feature) ---------------------------------
    def next_wakeup(self) -> float | None:
        return self._ctx.clock() if any(g.moved for g in self.groups.all()) else None

    async def run_due(self, now: float) -> None:
        for group in self.groups.all():
            if group.moved:
                group.moved = False
                await self._after_move(group)

    async def _after_move(self, group: Group) -> None:
        conversation = self._conversations.get(group.id)
        if conversation is None:
            return
        await self._write_lines(group)
        await self._sending.membership_changed(conversation)
        if group.joined and group.needs_our_key(self._ctx.clock()):
            # A new member: a sync carries our key (and who we are) to them now, rather
            # than with whatever we send next.
            self._syncs.soon(group.id, self._ctx.clock())
        name = group.state.name
        await self._ctx.db.run(lambda s: s.conversations.set_title(group.id, name))
        if self.invites is not None:
            await self.invites.answered_in_log(group)
        self._ctx.emit(ev.ChatUpdated(await self.chat_view(group.id)))

    async def _write_lines(self, group: Group) -> None:
        """The changes learned since the last pass as system lines (once each: a line that
        came in its frame meanwhile is there already)."""
        lines, group.lines = group.lines, []
        state, now_ms = group.state, self._ctx.now_ms()
        rows = [(c, system_text(state, c)) for c in lines]

        def write(store: Store) -> list[int]:
            added: list[int] = []
            with store.db.transaction():
                for change, text in rows:
                    if store.messages.by_message_id(group.id, change.id) is None:
                        rowid = store.messages.add(
                            conversation_id=group.id,
                            message_id=change.id,
                            sender=change.author,
                            outgoing=False,
                            body=text,
                            sent_at=int(change.at * 1000),
                            state="received",
                            now=now_ms,
                            received_at=now_ms,
                            kind="system",
                            evidence={"via": "membership log"},
                        )
                        added.append(rowid)
            return added

        if not rows:
            return
        for rowid in await self._ctx.db.run(write):
            stored = await self._ctx.db.run(_message_at(rowid))
            if stored is not None:
                self._ctx.emit(ev.MessageAdded(self._sending.view(stored)))

    # ---- commands (under the lock) -----------------------------------------------------------
    async def create(self, name: str, members: list[str]) -> ev.GroupView:
        try:
            name = ch.clean_group_name(name)
        except ChangeError as exc:
            raise ev.InvalidInput(str(exc)) from None
        invitees = self._invitees(members)
        me = self._ctx.me
        root = ch.created(me, name, self._ctx.clock())
        group = self.groups.new(MembershipLog(root), me.chat_key_text)
        await self._open_conversation(group)
        self._ctx.emit(ev.ChatUpdated(await self.chat_view(group.id)))
        # Every `invited` change first, then the invitations: each carries the log as it is
        # when sent, so every invitee learns of all the others at once. Sent one by one, the
        # first invitees' logs held only themselves, and what they missed was more than any
        # later key share carries.
        changes = [await self._commit_invitation(group, chat_key) for chat_key in invitees]
        assert self.invites is not None
        for change in changes:
            await self.invites.send(group, change)
        return self.view(group)

    def _invitees(self, members: list[str]) -> list[str]:
        if len(members) > MAX_MEMBERS - 1:
            raise ev.InvalidInput(f"a group has at most {MAX_MEMBERS} members")
        found: list[str] = []
        for chat_key in members:
            self._contact(chat_key)
            if chat_key not in found:
                found.append(chat_key)
        return found

    def _contact(self, chat_key: str) -> str:
        """A mutual contact's chat key; only contacts can be invited."""
        if chat_key == self._ctx.me.chat_key_text:
            raise ev.InvalidInput("you cannot invite yourself")
        try:
            parse_chat_key(chat_key)
        except IdentityError as exc:
            raise ev.InvalidInput(str(exc)) from None
        flow = self._requests.find(chat_key)
        if chat_key not in self._contacts or flow is None or flow.state is not MUTUAL:
            raise ev.NotPossible(f"only contacts can be invited, and {chat_key[:64]} is not one")
        return chat_key

    async def add_member(self, group_id: str, chat_key: str) -> ev.GroupView:
        group = self._admin_of(group_id, "add members")
        self._contact(chat_key)
        member = group.state.member(chat_key)
        if member is not None and member.state is MemberState.JOINED:
            raise ev.NotPossible("they are a member already")
        open_invite = self.invites.open_sent(group.id, chat_key) if self.invites else None
        if member is not None and member.state_at(self._ctx.clock()) == "invited":
            if open_invite is not None and self.invites is not None:
                await self.invites.send_again(open_invite.id)  # a failed one goes again
                return self.view(group)
            unsent = self._unsent_invitation(group, member)
            if unsent is not None and self.invites is not None:
                await self.invites.send(group, unsent)
                return self.view(group)
            raise ev.NotPossible("they are invited already")
        await self._invite(group, chat_key)
        return self.view(group)

    def _unsent_invitation(self, group: Group, member: Member) -> Change | None:
        """Our `invited` change for them that has no invitation row: we stopped between
        committing the change and saving the invitation (a crash); it goes now."""
        if self.invites is None or member.invited_by != group.own:
            return None
        if self.invites.invites.get(member.invite_id) is not None:
            return None
        return next((c for c in group.log.changes() if c.id == member.invite_id), None)

    async def _invite(self, group: Group, chat_key: str) -> None:
        change = await self._commit_invitation(group, chat_key)
        assert self.invites is not None
        await self.invites.send(group, change)

    async def _commit_invitation(self, group: Group, chat_key: str) -> Change:
        """Our `invited` change for them, committed with its frame; the invitation itself
        goes after (`invites.send`)."""
        assert self.invites is not None
        now = self._ctx.clock()
        change = ch.invited(
            self._ctx.me,
            group.id,
            group.log.next_lamport(),
            self._contacts.link_texts[chat_key],
            now + self.invites.policy.lifetime,
            now,
            parents=group.log.heads(),
        )
        await self.publish(group, change)
        return change

    async def rename(self, group_id: str, name: str) -> ev.GroupView:
        group = self._admin_of(group_id, "rename it")
        try:
            change = ch.renamed(
                self._ctx.me,
                group.id,
                group.log.next_lamport(),
                name,
                self._ctx.clock(),
                parents=group.log.heads(),
            )
        except ChangeError as exc:
            raise ev.InvalidInput(str(exc)) from None
        if change.name != group.state.name:
            await self.publish(group, change)
        return self.view(group)

    async def remove_member(self, group_id: str, chat_key: str) -> ev.GroupView:
        group = self._admin_of(group_id, "remove members")
        member = group.state.member(chat_key[:64])
        if member is None or member.state not in (MemberState.JOINED, MemberState.INVITED):
            raise ev.NotFound(f"{chat_key[:64]} is not in this group")
        change = ch.removed(
            self._ctx.me,
            group.id,
            group.log.next_lamport(),
            parse_chat_key(member.chat_key),
            self._ctx.clock(),
            parents=group.log.heads(),
        )
        group.notify(member.chat_key, change)  # they cannot read the frame that says so
        await self.publish(group, change)
        if self.invites is not None:
            await self.invites.cancel(group.id, member.chat_key)
        return self.view(group)

    async def grant_admin(self, group_id: str, chat_key: str) -> ev.GroupView:
        group = self._admin_of(group_id, "make others admins")
        member = group.state.member(chat_key[:64])
        if member is None or member.state is not MemberState.JOINED:
            raise ev.NotFound(f"{chat_key[:64]} is not a member of this group")
        change = ch.admin_granted(
            self._ctx.me,
            group.id,
            group.log.next_lamport(),
            parse_chat_key(member.chat_key),
            self._ctx.clock(),
            parents=group.log.heads(),
        )
        if not member.admin:
            await self.publish(group, change)
        return self.view(group)

    async def leave(self, group_id: str) -> ev.GroupView:
        group = self.group(group_id)
        if not group.joined:
            raise ev.NotPossible(NOT_A_MEMBER)
        now = self._ctx.clock()
        change = ch.left(
            self._ctx.me, group.id, group.log.next_lamport(), now, parents=group.log.heads()
        )
        await self.publish(group, change, farewell=True)
        return self.view(group)

    def _admin_of(self, group_id: str, what: str) -> Group:
        group = self.group(group_id)
        if not group.joined:
            raise ev.NotPossible(NOT_A_MEMBER)
        if not group.state.is_admin(group.own):
            raise ev.NotAllowed(f"only an admin of this group can {what}")
        return group

    async def publish(self, group: Group, change: Change, *, farewell: bool = False) -> str:
        """Our change: checked against the log's rules, taken into the log, and committed
        with the frame that carries it (the frame's message row is its system line) before
        the scheduler publishes it. `farewell`: our own leaving, which may go out after."""
        try:
            apply(group.state, change)
            group.learn(change)
        except (ChangeError, LogError) as exc:
            raise ev.NotPossible(str(exc)) from None
        return await self.relay(group, change, farewell=farewell)

    async def relay(self, group: Group, change: Change, *, farewell: bool = False) -> str:
        """A change in the log (ours, or one handed to us, a declined invitation) sent to
        the group in a frame; returns the frame's id."""
        conversation = self._conversations.get(group.id)
        if conversation is None:
            raise ev.NotFound(f"no group {group.id}")
        now = self._ctx.clock()
        # The frame's id is the change's, so its line shows once everywhere; a change we
        # hold a line for already (relayed) goes in a frame of its own id.
        held = await self._ctx.db.run(lambda s: s.messages.by_message_id(group.id, change.id))
        message_id = change.id if held is None else secrets.token_hex(16)
        if farewell:
            group.keys.leaving(message_id)
        content = GroupContent(change=change.signed).encode()
        row = (change.id, change.lamport, change.signed)

        def keep_change(store: Store) -> None:
            store.groups.add_changes(group.id, [row], now=int(now * 1000))

        view = await self._sending.submit(
            conversation,
            message_id,
            content,
            text=system_text(group.state, change),
            reply_to=None,
            now=now,
            kind="system",
            also=keep_change,
        )
        self._ctx.emit(ev.MessageAdded(view))
        self._ctx.emit(ev.GroupUpdated(self.view(group)))
        self._ctx.emit(ev.ChatUpdated(await self.chat_view(group.id)))
        self._ctx.wake_scheduler()
        return message_id

    async def join(self, log_: MembershipLog, joined: Change) -> Group:
        """We accepted an invitation: the group from its log (or the one we held, with the
        log's changes merged), its conversation, and our `joined` in a frame."""
        group = self.groups.get(log_.group_id)
        if group is None:
            group = self.groups.new(log_, self._ctx.me.chat_key_text)
        else:
            for change in log_.changes():
                group.learn(change)
        if self._conversations.get(group.id) is None:
            await self._open_conversation(group)
        # Members still invited get our invitation and join pairwise (no key) with our first
        # envelopes: one who accepts at the same moment sees us only invited, so no frame of
        # ours would tell them until it was sent again a minute later.
        invitation = next((c for c in group.log.changes() if c.id == joined.invite_id), None)
        now = self._ctx.clock()
        for member in group.state.members.values():
            if member.chat_key != group.own and member.state_at(now) == "invited":
                for proof in (invitation, joined):
                    if proof is not None:
                        group.notify(member.chat_key, proof)
        await self.publish(group, joined)
        return group

    async def send_text(self, chat_id: str, text: str, reply_to: str | None) -> ev.MessageView:
        """Under the lock; `text` is checked by the caller, `reply_to` here."""
        group = self.group(chat_id)
        conversation = self._conversations.get(group.id)
        assert conversation is not None
        if not group.joined:
            raise ev.NotPossible(NOT_A_MEMBER)
        if reply_to is not None and not await self._has_message(group.id, reply_to):
            raise ev.InvalidInput("reply_to names no message of this chat")
        now = self._ctx.clock()
        message_id = secrets.token_hex(16)
        body = direct_pb2.ChatMessage(
            id=message_id, text=text, reply_to=reply_to or "", sent_at_ms=int(now * 1000)
        )
        content = GroupContent(message=body.SerializeToString()).encode()
        return await self._sending.submit(
            conversation, message_id, content, text=text, reply_to=reply_to, now=now
        )

    async def _has_message(self, chat_id: str, message_id: str) -> bool:
        if len(message_id) > MAX_MESSAGE_ID_LENGTH:
            return False
        found = await self._ctx.db.run(lambda s: s.messages.by_message_id(chat_id, message_id))
        return found is not None

    # ---- views -------------------------------------------------------------------------------
    def view(self, group: Group) -> ev.GroupView:
        state, now = group.state, self._ctx.clock()
        mine = state.member(group.own)
        members = [
            ev.GroupMemberView(m.chat_key, m.display_name, m.state_at(now), m.admin)
            for m in state.members.values()
        ]
        return ev.GroupView(
            id=group.id,
            name=state.name,
            admins=state.admins(),
            members=members,
            creator=state.creator,
            my_state=mine.state.value if mine is not None else "invited",
            undecryptable=group.undecryptable,
        )

    def views(self) -> list[ev.GroupView]:
        return [self.view(g) for g in self.groups.all() if self._conversations.get(g.id)]

    async def chat_view(self, chat_id: str) -> ev.ChatView:
        return self.chat_view_of(await self._history.conversation(chat_id))

    def chat_view_of(self, conv: StoredConversation) -> ev.ChatView:
        group = self.groups.get(conv.id)
        return ev.chat_view_of(conv, name=group.state.name if group else None)
