"""The main screen: chat list, conversation, composer, and the health bar.

Keys (also in the command palette and on the help screen): Alt+A next unread chat,
Alt+Up/Down previous/next chat, Ctrl+R retry: reconnect now when not online, and retry the
selected (or last failed) message, Ctrl+F search messages (Enter opens the conversation at
the message found), F2 contacts (and group invitations), F3 outbox, F4 your link, F5 new
group, F7 the open group's (or community channel's) members, F9 communities (new, join,
join requests), Tab moves between list, conversation and composer.
Text typed while the chat list has the focus goes to the composer.

A group chat's title says how many members it has; its messages carry their sender's name
(the member's), and ours the count of members who acknowledged them. A community channel's
title names the community, its member count, its shard and whether the shard is protected;
ours say "seen by n" (no "delivered" in a channel of hundreds).

Under 80 columns the chat list narrows (the `-narrow` class); with no peer configured and
none found, a hint above the health bar says how to add one; when the network part stops,
the health bar and the hint say so in a sentence.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from chat.events import (
    ChatUpdated,
    ChatView,
    CommunityRequestUpdated,
    CommunityUpdated,
    CommunityView,
    ContactUpdated,
    Event,
    GroupUpdated,
    GroupView,
    HealthUpdated,
    HealthView,
    InviteUpdated,
    MessageAdded,
    MessagesLost,
    MessageUpdated,
    MessageView,
    Rejected,
    StrangerRequestsDropped,
)
from chat.text import replace_lone_surrogates
from ui.community_format import community_title
from ui.format import GROUP_MARK, chat_label, group_title, no_peers_hint, retry_notice, stopped_hint
from ui.host import ChatHost, host
from ui.messages import DisplayNameChanged, MessengerStarted, MessengerStopped
from ui.widgets.chat_list import ChatList
from ui.widgets.composer import Composer
from ui.widgets.conversation import ConversationView
from ui.widgets.health_bar import HealthBar

PAGE = 60
"""Messages per page: the newest page on opening a chat, then one per scroll to the top."""
CONTEXT = 20
"""Messages loaded above one opened from a search result."""
MARK_READ_DELAY = 0.3
"""Seconds a burst of arrivals in the open chat is collected into one mark_read."""


class MainScreen(Screen[None]):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (80, "-wide")]  # noqa: RUF012 (Textual's)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("alt+a", "next_unread", "Next unread"),
        Binding("alt+up", "chat(-1)", "Prev chat", show=False),
        Binding("alt+down", "chat(1)", "Next chat", show=False),
        Binding("ctrl+r", "retry", "Retry"),
        Binding("ctrl+f", "search", "Search"),
        Binding("f2", "contacts", "Contacts"),
        Binding("f3", "outbox", "Outbox"),
        Binding("f4", "app.my_link", "My link"),
        Binding("f5", "new_group", "New group"),
        # Priority: the composer (a TextArea) binds F7 to "select all" otherwise.
        Binding("f7", "members", "Members", priority=True),
        Binding("f9", "communities", "Communities", show=False),
        Binding("escape", "cancel_reply", "Cancel reply", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.current_chat: str | None = None
        self.reply_to: MessageView | None = None
        self.contacts_waiting: dict[str, bool] = {}
        self.invites_waiting: dict[str, bool] = {}
        self.groups: dict[str, GroupView] = {}
        self.communities: dict[str, CommunityView] = {}
        self.join_requests_waiting: dict[str, bool] = {}
        self.contact_names: dict[str, str] = {}
        """Display names by chat key: senders in groups who are our contacts too."""
        self.own_name = "me"
        self._send_order = asyncio.Lock()

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="sidebar"):
                yield Static("Chats", classes="pane-title")
                yield ChatList(id="chat-list", typing_target=lambda: self.query_one(Composer))
            with Vertical(id="chat-pane"):
                yield Static("No chat open: add a contact with F2", id="chat-title", markup=False)
                yield ConversationView(
                    names=self._sender_name, clock_fn=self.chinwag.clock, id="conversation"
                )
                yield Static("", id="reply-bar", markup=False)
                yield Composer(id="composer")
        yield Static("", id="network-hint", markup=False)
        yield HealthBar(id="health")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#reply-bar").display = False
        self.query_one("#network-hint").display = False
        if self.chinwag.messenger_failure is not None:
            self._show_stopped(self.chinwag.messenger_failure)
        source = self.chinwag.chat_source()
        if source is None:
            return
        chats = await self.chinwag.call(source.chats) or []
        chat_list = self.query_one(ChatList)
        chat_list.set_chats(chats)
        if self.chinwag.messenger is not None:
            await self._show_messenger_state()
        if self.chinwag.ready_at is None:
            self.chinwag.ready_at = time.perf_counter()
        if chats:
            await self.open_chat(chat_list.ordered()[0].id)
        chat_list.focus()

    async def on_messenger_started(self, _: MessengerStarted) -> None:
        await self.attach()

    def on_messenger_stopped(self, message: MessengerStopped) -> None:
        self._show_stopped(message.reason)

    def _show_stopped(self, reason: str) -> None:
        self.query_one(HealthBar).stopped(reason)
        self._show_hint(stopped_hint(reason, self.chinwag.network_setup()))

    def _show_health(self, health: HealthView) -> None:
        self.query_one(HealthBar).show(health)
        setup = self.chinwag.network_setup()
        alone = health.peers == 0 and setup.peers == 0
        self._show_hint(no_peers_hint(setup) if alone else "")

    def _show_hint(self, text: str) -> None:
        hint = self.query_one("#network-hint", Static)
        hint.update(text)
        hint.display = bool(text)

    def on_display_name_changed(self, message: DisplayNameChanged) -> None:
        self.set_own_name(message.name)

    async def attach(self) -> None:
        """The messenger is up: what only it knows (names, live outbox states, requests,
        health) replaces what was read from the store."""
        messenger = self.chinwag.messenger
        if messenger is None or not self.query(HealthBar):
            return  # not composed yet: on_mount will find the messenger running
        chats = await self.chinwag.call(messenger.chats) or []
        self.query_one(ChatList).set_chats(chats)
        await self._show_messenger_state()
        chat_id = self.current_chat
        if chat_id is not None:  # the store alone did not know the contact's chat key
            self._show_title(self.query_one(ChatList).chats.get(chat_id), chat_id)
        if chat_id is None:
            if chats:
                await self.open_chat(self.query_one(ChatList).ordered()[0].id)
            return
        conversation = self.query_one(ConversationView)
        for message in await self.chinwag.call(messenger.messages, chat_id, limit=PAGE) or []:
            conversation.update(message)
        chat = self.query_one(ChatList).chats.get(chat_id)
        if chat is not None and chat.unread:
            self.mark_read_soon(chat_id)

    async def _show_messenger_state(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None:
            return
        self.own_name = messenger.identity().display_name or "me"
        self._show_health(messenger.health())
        await self._count_requests()
        groups = await self.chinwag.call(messenger.groups) or []
        self.groups = {group.id: group for group in groups}
        communities = await self.chinwag.call(messenger.communities) or []
        self.communities = {community.id: community for community in communities}
        if self.community_of(self.current_chat or "") is not None:
            self._show_title(self.query_one(ChatList).chats.get(self.current_chat or ""))
            self.query_one(ConversationView).names_changed()
        if self.current_chat in self.groups:
            self._show_title(self.query_one(ChatList).chats.get(self.current_chat))
            self.query_one(ConversationView).names_changed()
        self.refresh_bindings()

    async def _count_requests(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None:
            return
        contacts = await self.chinwag.call(messenger.contacts) or []
        self.contacts_waiting = {c.chat_key: c.state == "request_received" for c in contacts}
        self.contact_names = {c.chat_key: c.display_name for c in contacts if c.display_name}
        self.query_one(ChatList).set_requests(sum(self.contacts_waiting.values()))
        invites = await self.chinwag.call(messenger.invites) or []
        self.invites_waiting = {
            i.id: i.direction == "received" and i.state == "invited" for i in invites
        }
        self.query_one(ChatList).set_invitations(sum(self.invites_waiting.values()))
        requests = await self.chinwag.call(messenger.community_requests) or []
        self.join_requests_waiting = {r.id: _waiting(r.direction, r.state) for r in requests}
        self.query_one(ChatList).set_join_requests(sum(self.join_requests_waiting.values()))

    @work(exclusive=True, group="requests-recount")
    async def recount_requests_soon(self) -> None:
        await self._count_requests()

    # ---- names ---------------------------------------------------------------------------
    def _sender_name(self, message: MessageView) -> str:
        if message.outgoing:
            return self.own_name
        group = self.groups.get(message.chat_id)
        community = self.community_of(message.chat_id)
        if community is not None:
            known = next((m for m in community.members if m.chat_key == message.sender), None)
            fallback = known.display_name if known is not None else ""
            return self.contact_names.get(message.sender) or fallback or message.sender[:12]
        if group is None:
            return self.chat_name(message.chat_id)
        member = next((m for m in group.members if m.chat_key == message.sender), None)
        name = member.display_name if member is not None else ""
        return self.contact_names.get(message.sender) or name or message.sender[:12]

    def community_of(self, chat_id: str) -> CommunityView | None:
        """The community whose channel `chat_id` is, if it is one."""
        for community in self.communities.values():
            if any(channel.id == chat_id for channel in community.channels):
                return community
        return None

    def chat_name(self, chat_id: str) -> str:
        chat = self.query_one(ChatList).chats.get(chat_id)
        return chat_label(chat) if chat is not None else chat_id[:8]

    # ---- opening chats -----------------------------------------------------------------
    async def open_chat(self, chat_id: str) -> None:
        source = self.chinwag.chat_source()
        if source is None:
            return
        chat_list = self.query_one(ChatList)
        chat = chat_list.chats.get(chat_id)
        page = await self.chinwag.call(source.messages, chat_id, limit=PAGE)
        if page is None:
            return
        self.current_chat = chat_id
        chat_list.set_current(chat_id)
        self.cancel_reply()
        self._show_title(chat, chat_id)
        self.query_one(ConversationView).show_chat(
            chat_id,
            page,
            unread=chat.unread if chat else 0,
            has_older=len(page) == PAGE,
            group=(chat is not None and chat.kind == "group") or chat_id in self.groups,
            channel=(chat is not None and chat.kind == "channel")
            or self.community_of(chat_id) is not None,
        )
        self.refresh_bindings()  # F7 members: for a group only
        messenger = self.chinwag.messenger
        if chat is not None and chat.unread and messenger is not None:
            updated = await self.chinwag.call(messenger.mark_read, chat_id)
            if updated is not None:
                chat_list.upsert(updated)

    def _show_title(self, chat: ChatView | None, chat_id: str = "") -> None:
        title = chat_label(chat) if chat is not None else chat_id
        group = self.groups.get(chat.id) if chat is not None else None
        community = self.community_of(chat.id) if chat is not None else None
        if community is not None and chat is not None:
            title = community_title(community, chat.id) + "  ·  F7 members"
        elif group is not None:
            title = group_title(group) + "  ·  F7 members"
        elif chat is not None and chat.kind == "group":
            title = f"{GROUP_MARK} {title}"
        elif chat is not None and chat.peer_chat_key:
            title += f"  ·  {chat.peer_chat_key}"
        self.query_one("#chat-title", Static).update(title)

    def set_own_name(self, name: str) -> None:
        self.own_name = name
        self.query_one(ConversationView).names_changed()

    async def on_chat_list_chat_chosen(self, event: ChatList.ChatChosen) -> None:
        await self.open_chat(event.chat_id)
        self.query_one(Composer).focus()

    def on_chat_list_requests_chosen(self, _: ChatList.RequestsChosen) -> None:
        self.action_contacts()

    def on_chat_list_new_group_chosen(self, _: ChatList.NewGroupChosen) -> None:
        self.action_new_group()

    def on_chat_list_communities_chosen(self, _: ChatList.CommunitiesChosen) -> None:
        self.action_communities()

    async def on_conversation_view_older_wanted(self, event: ConversationView.OlderWanted) -> None:
        source = self.chinwag.chat_source()
        if source is None:
            return
        page = await self.chinwag.call(
            source.messages, event.chat_id, limit=PAGE, before=event.before
        )
        if page is not None:
            self.query_one(ConversationView).prepend(
                event.chat_id, page, has_older=len(page) == PAGE
            )

    async def on_conversation_view_quote_wanted(self, event: ConversationView.QuoteWanted) -> None:
        source = self.chinwag.chat_source()
        if source is None:
            return
        try:
            quoted = await self.chinwag.bridge.call(source.message, event.message_id)
        except Exception:  # a reply to something we never had: the quote line says so
            return
        self.query_one(ConversationView).set_quote(quoted)

    async def on_conversation_view_newer_wanted(self, event: ConversationView.NewerWanted) -> None:
        source = self.chinwag.chat_source()
        if source is None:
            return
        page = await self.chinwag.call(
            source.messages, event.chat_id, limit=PAGE, after=event.after
        )
        if page is not None:
            self.query_one(ConversationView).append_page(
                event.chat_id, page, has_newer=len(page) == PAGE
            )

    async def on_conversation_view_newest_wanted(
        self, event: ConversationView.NewestWanted
    ) -> None:
        await self.open_chat(event.chat_id)

    # ---- search --------------------------------------------------------------------------
    def action_search(self) -> None:
        from ui.screens.search import SearchScreen

        chat_id = self.current_chat
        name = self.chat_name(chat_id) if chat_id is not None else ""
        self.app.push_screen(SearchScreen(chat_id, name), self._after_search)

    async def _after_search(self, choice: object) -> None:
        from ui.screens.search import SearchChoice

        if isinstance(choice, SearchChoice):
            await self.open_at(choice.chat_id, choice.message_id)

    async def open_at(self, chat_id: str, message_id: str) -> None:
        """Open a chat at one of its messages (found by search): the message selected, with
        what came before it and after it; older and newer pages load as the user scrolls."""
        source = self.chinwag.chat_source()
        if source is None:
            return
        older = await self.chinwag.call(source.messages, chat_id, limit=CONTEXT, before=message_id)
        found = await self.chinwag.call(source.message, message_id)
        newer = await self.chinwag.call(source.messages, chat_id, limit=PAGE, after=message_id)
        if older is None or found is None or newer is None:
            return
        chat_list = self.query_one(ChatList)
        chat = chat_list.chats.get(chat_id)
        self.current_chat = chat_id
        chat_list.set_current(chat_id)
        self.cancel_reply()
        self._show_title(chat, chat_id)
        conversation = self.query_one(ConversationView)
        conversation.show_window(
            chat_id,
            [*older, found, *newer],
            focus=message_id,
            has_older=len(older) == CONTEXT,
            has_newer=len(newer) == PAGE,
        )
        # The stretch keeps the open chat's columns otherwise (a group's counts, "seen by n").
        conversation.set_group(
            (chat is not None and chat.kind == "group") or chat_id in self.groups
        )
        conversation.set_channel(self.community_of(chat_id) is not None)
        conversation.focus()
        if chat is not None and chat.unread:
            self.mark_read_soon(chat_id)

    def on_conversation_view_action(self, event: ConversationView.Action) -> None:
        if event.action == "reply":
            self.reply_to = event.message
            bar = self.query_one("#reply-bar", Static)
            snippet = event.message.text.replace("\n", " ")[:60]
            bar.update(
                f"↱ replying to {self._sender_name(event.message)}: {snippet}  (Esc cancels)"
            )
            bar.display = True
            self.query_one(Composer).focus()
        elif event.action == "trace":
            self.show_trace(event.message)

    def show_trace(self, message: MessageView) -> None:
        from ui.screens.trace import TraceScreen

        group = self.groups.get(message.chat_id)
        names = self._member_names(group) if group is not None else {}
        channel = self.community_of(message.chat_id) is not None
        self.app.push_screen(TraceScreen(message, group=group, names=names, channel=channel))

    def _member_names(self, group: GroupView) -> dict[str, str]:
        names = {m.chat_key: m.display_name for m in group.members if m.display_name}
        return {**names, **self.contact_names}

    # ---- sending -----------------------------------------------------------------------
    async def on_composer_submitted(self, event: Composer.Submitted) -> None:
        chat_id = self.current_chat
        if chat_id is None:
            self.notify("Open a chat first (add a contact with F2).", severity="warning")
            self.query_one(Composer).give_back(event.text)
            return
        reply_to = self.reply_to.id if self.reply_to is not None else None
        self.cancel_reply()
        if self.chinwag.messenger is None:
            if self.chinwag.messenger_ready.is_set():  # it stopped, it is not starting
                self._not_sent(event.text)
                return
            self.notify("Sending as soon as the network core has started.")
            self.run_worker(self._send(chat_id, event.text, reply_to), group="early-sends")
            return
        await self._send(chat_id, event.text, reply_to)

    async def _send(self, chat_id: str, text: str, reply_to: str | None) -> None:
        # A lone surrogate (half of a pasted pair) cannot be sent: it becomes U+FFFD rather
        # than the whole paste being refused.
        text = replace_lone_surrogates(text)
        # One at a time, first come first served (asyncio.Lock is fair): messages typed
        # while the core starts wait here together and must leave in the order typed.
        async with self._send_order:
            messenger = await self.chinwag.wait_for_messenger()
            if messenger is None:
                self._not_sent(text)
                return
            sent = await self.chinwag.call(messenger.send_text, chat_id, text, reply_to)
        if sent is not None:
            self.query_one(ConversationView).add(sent)
        else:  # refused (the notification says why): nothing typed is lost
            self.query_one(Composer).give_back(text)

    def _not_sent(self, text: str) -> None:
        """The network core is not running: say so, and give the text back to edit or keep."""
        self.notify(
            "Not sent: the network part is not running (see the log file).", severity="error"
        )
        self.query_one(Composer).give_back(text)

    def action_send_in_parts(self) -> None:
        """Send a text over the length limit as several messages, in order."""
        composer = self.query_one(Composer)
        if not composer.over_limit:
            self.notify("Nothing too long to send in parts.")
            return
        if self.current_chat is None:
            self.notify("Open a chat first (add a contact with F2).", severity="warning")
            return
        parts = composer.take_parts()
        for part in parts:
            self.post_message(Composer.Submitted(part))
        self.notify(f"Sending it as {len(parts)} messages.")

    def cancel_reply(self) -> None:
        self.reply_to = None
        bar = self.query_one("#reply-bar", Static)
        bar.display = False

    def action_cancel_reply(self) -> None:
        if self.reply_to is not None:
            self.cancel_reply()
        else:
            self.query_one(ConversationView).action_clear_cursor()

    # ---- events from the messenger -----------------------------------------------------
    def handle_event(self, event: Event) -> None:
        conversation = self.query_one(ConversationView)
        chat_list = self.query_one(ChatList)
        messenger = self.chinwag.messenger
        if isinstance(event, MessageAdded | MessageUpdated) and messenger is not None:
            # The outbox count moves with every message; HealthUpdated comes on network changes.
            self._show_health(messenger.health())
        if isinstance(event, MessageAdded):
            conversation.add(event.message)
            if not event.message.outgoing and event.message.kind != "system":
                self._arrived(event.message.chat_id)
        elif isinstance(event, MessageUpdated):
            conversation.update(event.message)
        elif isinstance(event, ChatUpdated):
            chat = event.chat
            if chat.id == self.current_chat and chat.unread and self.app.screen is self:
                self.mark_read_soon(chat.id)
            known = chat_list.chats.get(chat.id)
            chat_list.upsert(chat)
            if known is not None and known.name != chat.name and chat.id == self.current_chat:
                conversation.names_changed()  # the contact renamed themselves
            if chat.id == self.current_chat:
                self._show_title(chat)
                conversation.set_group(chat.kind == "group")
                conversation.set_channel(chat.kind == "channel")
        elif isinstance(event, ContactUpdated):
            self.contacts_waiting[event.contact.chat_key] = (
                event.contact.state == "request_received"
            )
            if event.contact.display_name:
                self.contact_names[event.contact.chat_key] = event.contact.display_name
            chat_list.set_requests(sum(self.contacts_waiting.values()))
        elif isinstance(event, InviteUpdated):
            invite = event.invite
            self.invites_waiting[invite.id] = (
                invite.direction == "received" and invite.state == "invited"
            )
            chat_list.set_invitations(sum(self.invites_waiting.values()))
        elif isinstance(event, GroupUpdated):
            self.groups[event.group.id] = event.group
            if event.group.id == self.current_chat:
                self._show_title(chat_list.chats.get(event.group.id), event.group.id)
                conversation.set_group(True)
                conversation.names_changed()
                self.refresh_bindings()
        elif isinstance(event, CommunityUpdated):
            self._community_changed(event.community)
        elif isinstance(event, CommunityRequestUpdated):
            request = event.request
            self.join_requests_waiting[request.id] = _waiting(request.direction, request.state)
            chat_list.set_join_requests(sum(self.join_requests_waiting.values()))
        elif isinstance(event, HealthUpdated):
            self._show_health(event.health)
        elif isinstance(event, StrangerRequestsDropped):
            self.recount_requests_soon()  # requests we showed as waiting may be gone
        elif isinstance(event, MessagesLost):
            self.notify(
                f"{event.count} earlier message(s) in {self.chat_name(event.chat_id)} could not "
                "be retrieved; later ones are shown without them.",
                severity="warning",
                timeout=15,
            )
        elif isinstance(event, Rejected):
            self.notify(f"Refused a message: {event.reason}", severity="warning")

    def _community_changed(self, community: CommunityView) -> None:
        """A community's new description, or our place in it: channels we may no longer read
        (we left, were removed or banned; a channel was removed) leave the chat list, and
        the open one closes with a notice."""
        before = self.communities.get(community.id)
        out = community.my_role == "none"
        kept = set() if out else {channel.id for channel in community.channels}
        gone = {c.id for c in before.channels} - kept if before is not None else set()
        if out:
            self.communities.pop(community.id, None)
        else:
            self.communities[community.id] = community
        chat_list = self.query_one(ChatList)
        chat_list.drop(gone)
        chat_list.restore(kept)  # let back in: the channels we hid come back
        if self.current_chat in gone:
            name = community.name
            self.notify(
                f"You are no longer a member of {name} (you left, or a moderator removed "
                "you): its channels left your chat list."
                if out
                else f"This channel was removed from {name}.",
                timeout=15,
            )
            self.current_chat = None
            chat_list.set_current(None)
            self.query_one(ConversationView).clear_chat()
            self.query_one("#chat-title", Static).update("No chat open")
            self.refresh_bindings()
        elif self.community_of(self.current_chat or "") is community:
            self._show_title(chat_list.chats.get(self.current_chat or ""))
            self.query_one(ConversationView).names_changed()
            self.refresh_bindings()

    def _arrived(self, chat_id: str) -> None:
        """A message came in: read at once if its chat is open; else (or when the user looks
        elsewhere) announced, as the config file says."""
        if chat_id == self.current_chat:
            self.mark_read_soon(chat_id)
            if self.app.screen is self and self.app.app_focus:
                return
        self.chinwag.announce_message(self.chat_name(chat_id))

    @work(exclusive=True, group="mark-read")
    async def mark_read_soon(self, chat_id: str) -> None:
        """Mark the open chat read, at most a few times a second however fast messages come
        (each new request replaces a pending one)."""
        await asyncio.sleep(MARK_READ_DELAY)
        messenger = self.chinwag.messenger
        if messenger is None:
            return
        updated = await self.chinwag.call(messenger.mark_read, chat_id)
        if updated is not None:
            self.query_one(ChatList).upsert(updated)

    def on_screen_resume(self) -> None:
        if self.current_chat is not None:
            chat = self.query_one(ChatList).chats.get(self.current_chat)
            if chat is not None and chat.unread:
                self.mark_read_soon(chat.id)

    # ---- actions -----------------------------------------------------------------------
    async def action_next_unread(self) -> None:
        chat = self.query_one(ChatList).next_unread()
        if chat is None:
            self.notify("No unread messages.")
            return
        await self.open_chat(chat.id)
        self.query_one(Composer).focus()

    async def action_chat(self, step: int) -> None:
        chat = self.query_one(ChatList).neighbour(step)
        if chat is not None:
            await self.open_chat(chat.id)
            self.query_one(Composer).focus()

    async def action_retry(self) -> None:
        """Retry now: when not online, dial every known peer at once; and retry the selected
        (or last failed) message."""
        messenger = self.chinwag.messenger
        conversation = self.query_one(ConversationView)
        selected = conversation.selected
        target = selected if selected is not None and selected.outgoing else None
        if target is None or target.state in ("delivered", "stored", "sent"):
            target = conversation.last_failed()
        reconnecting = messenger is not None and messenger.health().status != "online"
        if reconnecting:
            await self.chinwag.reconnect_now()
        if messenger is None or target is None:
            if not reconnecting:
                self.notify("Nothing to retry here.")
            return
        updated = await self.chinwag.call(messenger.retry, target.id)
        if updated is not None:
            conversation.update(updated)
            self.notify(retry_notice(updated))

    def action_contacts(self) -> None:
        from ui.screens.contacts import ContactsScreen

        self.app.push_screen(ContactsScreen(), self._after_contacts)

    async def _after_contacts(self, chat_id: str | None) -> None:
        if chat_id is not None:
            await self.open_chat(chat_id)
            self.query_one(Composer).focus()

    def action_outbox(self) -> None:
        from ui.screens.outbox import OutboxScreen

        self.app.push_screen(OutboxScreen())

    def action_new_group(self) -> None:
        from ui.screens.new_group import NewGroupScreen

        if self.chinwag.messenger is None:
            self.notify("Groups can be made once the network part has started.")
            return
        self.app.push_screen(NewGroupScreen(), self._after_contacts)

    def action_members(self) -> None:
        from ui.screens.members import MembersScreen

        group = self.groups.get(self.current_chat or "")
        messenger = self.chinwag.messenger
        community = self.community_of(self.current_chat or "")
        if community is not None and messenger is not None:
            from ui.screens.community_members import CommunityMembersScreen

            me = messenger.identity().chat_key
            self.app.push_screen(CommunityMembersScreen(community, me))
            return
        if group is None or messenger is None:
            self.notify("Open a group chat first (F5 makes one).")
            return
        self.app.push_screen(MembersScreen(group, messenger.identity().chat_key))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "members":  # offered in a group chat or a community channel only
            chat_id = self.current_chat or ""
            return chat_id in self.groups or self.community_of(chat_id) is not None
        return True

    def action_communities(self) -> None:
        from ui.screens.communities import CommunitiesScreen

        if self.chinwag.messenger is None:
            self.notify("Communities open once the network part has started.")
            return
        self.app.push_screen(CommunitiesScreen(), self._after_contacts)

    def action_trace_selected(self) -> None:
        self.query_one(ConversationView).action_trace()

    def palette_commands(self) -> list[SystemCommand]:
        commands = [
            SystemCommand(
                "Contacts", "Add contacts, answer requests, verify (F2)", self.action_contacts
            ),
            SystemCommand("Outbox", "Everything not yet delivered (F3)", self.action_outbox),
            SystemCommand(
                "Search messages",
                "Find messages by their words, in every chat or this one (Ctrl+F)",
                self.action_search,
            ),
            SystemCommand(
                "New group", "A private group with contacts you pick (F5)", self.action_new_group
            ),
            SystemCommand(
                "Communities",
                "New community, join by link, join requests, open a channel (F9)",
                self.action_communities,
            ),
            SystemCommand(
                "Next unread chat",
                "Jump to the next chat with unread messages (Alt+A)",
                self.action_next_unread,
            ),
            SystemCommand(
                "Retry message",
                "Retry the selected or last failed message; reconnect when offline (Ctrl+R)",
                self.action_retry,
            ),
            SystemCommand(
                "Trace message",
                "Delivery timeline of the selected message (t)",
                self.action_trace_selected,
            ),
        ]
        if self.current_chat in self.groups:
            commands.append(
                SystemCommand(
                    "Group members",
                    "Members of this group: add, remove, rename, make admin, leave (F7)",
                    self.action_members,
                )
            )
        if self.community_of(self.current_chat or "") is not None:
            commands.append(
                SystemCommand(
                    "Community members",
                    "Members and roles of this channel's community, its shard and protection (F7)",
                    self.action_members,
                )
            )
        if self.query_one(Composer).over_limit:
            commands.insert(
                0,
                SystemCommand(
                    "Send in parts",
                    "Send the text in the composer, too long for one message, as several",
                    self.action_send_in_parts,
                ),
            )
        return commands


def _waiting(direction: str, state: str) -> bool:
    """A join request waits for our answer: someone asked a community we moderate."""
    return direction == "received" and state == "pending"
