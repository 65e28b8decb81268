"""The chat list: chats by latest activity, unread counts (a group's name after `#`, a
community channel's after `◆`), a badge for open contact requests and group invitations,
one for join requests waiting for us as a community's owner or admin (it opens the
communities screen, F9), and last a line that makes a new group."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget
from textual.widgets import OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

from chat.events import ChatView
from ui.community_format import CHANNEL_MARK
from ui.format import GROUP_MARK, chat_label
from ui.widgets.typeahead import follow_focus, typed_character

NEW_GROUP_ID = "__new_group__"
"""The last option: opens the new-group dialog."""
COMMUNITIES_ID = "__communities__"
"""The line that opens the communities screen (and the badge of join requests)."""
REQUESTS_ID = "__requests__"
"""The option that opens the contacts screen when requests or invitations wait for an
answer."""


class ChatList(OptionList):
    """One option per chat, most recent activity first; Enter or a click opens it. Text
    typed here goes to `typing_target` (the composer): right after unlocking the focus is
    on this list, and what someone starts typing is a message, not lost keys."""

    class ChatChosen(Message):
        def __init__(self, chat_id: str) -> None:
            super().__init__()
            self.chat_id = chat_id

    class RequestsChosen(Message):
        pass

    class NewGroupChosen(Message):
        pass

    class CommunitiesChosen(Message):
        pass

    def __init__(
        self, *, typing_target: Callable[[], Widget | None] | None = None, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.chats: dict[str, ChatView] = {}
        self.dropped: dict[str, ChatView] = {}
        """Chats hidden by `drop`, by id."""
        self.requests = 0
        self.invitations = 0
        self.join_requests = 0
        self._had_chats = False
        self.current: str | None = None
        self.typing_target = typing_target

    async def _on_key(self, event: events.Key) -> None:
        if follow_focus(self, event):
            return
        target = self.typing_target() if self.typing_target is not None else None
        if target is None or typed_character(event) is None:
            return
        # Focus now, not later (Widget.focus waits a turn): the keys typed behind this one,
        # already queued here, follow it there in order.
        self.screen.set_focus(target)
        follow_focus(self, event)

    def set_chats(self, chats: Iterable[ChatView]) -> None:
        self.chats = {chat.id: chat for chat in chats}
        for chat_id in self.chats:
            self.dropped.pop(chat_id, None)
        self._redraw()

    def upsert(self, chat: ChatView) -> None:
        if chat.id in self.dropped:
            self.dropped[chat.id] = chat
            return
        self.chats[chat.id] = chat
        self._redraw()

    def drop(self, chat_ids: Iterable[str]) -> None:
        """Chats no longer ours (a community's channels after we left or were removed, a
        removed channel): hidden, and kept aside with what later updates say of them (a
        straggling message must not bring one back), until `restore`."""
        gone = [chat_id for chat_id in chat_ids if chat_id in self.chats]
        for chat_id in gone:
            self.dropped[chat_id] = self.chats.pop(chat_id)
        if gone:
            self._redraw()

    def restore(self, chat_ids: Iterable[str]) -> None:
        """Dropped chats that are ours again (we were let back into the community)."""
        back = [chat_id for chat_id in chat_ids if chat_id in self.dropped]
        for chat_id in back:
            self.chats[chat_id] = self.dropped.pop(chat_id)
        if back:
            self._redraw()

    def set_requests(self, count: int) -> None:
        if count != self.requests:
            self.requests = count
            self._redraw()

    def set_invitations(self, count: int) -> None:
        """Group invitations waiting for our answer."""
        if count != self.invitations:
            self.invitations = count
            self._redraw()

    def set_join_requests(self, count: int) -> None:
        """Join requests to communities we moderate, waiting for our answer."""
        if count != self.join_requests:
            self.join_requests = count
            self._redraw()

    def set_current(self, chat_id: str | None) -> None:
        self.current = chat_id
        self._redraw()

    def ordered(self) -> list[ChatView]:
        return sorted(self.chats.values(), key=lambda c: c.last_activity_at, reverse=True)

    def next_unread(self) -> ChatView | None:
        """The next chat with unread messages after the current one (wrapping)."""
        ordered = self.ordered()
        ids = [c.id for c in ordered]
        start = ids.index(self.current) + 1 if self.current in ids else 0
        for chat in ordered[start:] + ordered[:start]:
            if chat.unread and chat.id != self.current:
                return chat
        return None

    def neighbour(self, step: int) -> ChatView | None:
        ordered = self.ordered()
        if not ordered:
            return None
        ids = [c.id for c in ordered]
        index = ids.index(self.current) if self.current in ids else -step
        return ordered[(index + step) % len(ordered)]

    def _label(self, chat: ChatView) -> Text:
        text = Text()
        text.append("▌" if chat.id == self.current else " ", "bold")
        name = chat_label(chat)
        if chat.kind == "group":
            text.append(GROUP_MARK + " ", "dim")
        elif chat.kind == "channel":
            text.append(CHANNEL_MARK + " ", "dim")
        if chat.unread:
            text.append(name, "bold")
            text.append(f" ({chat.unread})", "bold yellow")
        else:
            text.append(name)
        return text

    def _redraw(self) -> None:
        highlighted = self.highlighted_option.id if self.highlighted_option else None
        options: list[Option] = []
        waiting = []
        if self.requests:
            plural = "s" if self.requests != 1 else ""
            waiting.append(f"{self.requests} contact request{plural}")
        if self.invitations:
            plural = "s" if self.invitations != 1 else ""
            waiting.append(f"{self.invitations} group invitation{plural}")
        if waiting:
            label = Text(f" ✉ {', '.join(waiting)}", "bold yellow")
            options.append(Option(label, id=REQUESTS_ID))
        if self.join_requests:
            plural = "s" if self.join_requests != 1 else ""
            label = Text(f" ✉ {self.join_requests} join request{plural}", "bold yellow")
            options.append(Option(label, id=COMMUNITIES_ID))
        options.extend(Option(self._label(chat), id=chat.id) for chat in self.ordered())
        options.append(Option(Text(" + New group", "dim"), id=NEW_GROUP_ID))
        self.set_options(options)
        if highlighted == NEW_GROUP_ID and not self._had_chats:
            highlighted = None  # it was the only line: the first chat takes the highlight
        self._had_chats = bool(self.chats)
        target = highlighted or self.current
        self.highlighted = 0 if options else None  # Enter always acts on something
        if target is not None:
            with contextlib.suppress(OptionDoesNotExist):  # the option is gone
                self.highlighted = self.get_option_index(target)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id == REQUESTS_ID:
            self.post_message(self.RequestsChosen())
        elif event.option.id == NEW_GROUP_ID:
            self.post_message(self.NewGroupChosen())
        elif event.option.id == COMMUNITIES_ID:
            self.post_message(self.CommunitiesChosen())
        elif event.option.id is not None:
            self.post_message(self.ChatChosen(event.option.id))
