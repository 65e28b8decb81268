"""The conversation: a virtual scroll view over the loaded messages of one chat.

Only the loaded pages are kept (the newest page when a chat opens; older pages as the user
scrolls to the top), and only the visible lines are drawn (`render_line`), so a chat with
100k messages opens as fast as one with 50. Opened at a message found by search
(`show_window`), the view holds a stretch around it, the message selected; newer pages load
as the user scrolls to the bottom, and End goes to the newest. Each message renders to a
block of lines once per width; an update re-renders just that block.

Lines: day separators, a read marker before the first unread message, a quote line above a
reply, then `HH:MM ✓✓ name: text` with a hanging indent. The state of an outgoing message
sits in its own column between the time and the name, where no message text can reach
(text starts after the name and wraps under the indent), so a message that contains "✓✓"
cannot pass for a delivered one; why it failed or when it is retried goes on the next line.

In a group chat the state column is wider: it holds the count of members who acknowledged an
outgoing message (`✓✓ 3/5`); in a community channel it says how many members saw it
(`✓ seen by 3`). A system line (a join, a leave, a rename) has no sender's name:
`HH:MM · Bob joined`, in the system style.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from chat.events import MessageView
from ui.community_format import CHANNEL_STATE_WIDTH, channel_status
from ui.format import clock, day_key, day_label, group_status, state_detail, state_glyph

TIME_WIDTH = 6
"""'HH:MM '."""
STATE_WIDTH = 3
"""The state column: the glyph (at most two cells, ✓✓) and a space; blank when received."""
GROUP_STATE_WIDTH = 9
"""In a group: the glyph, a space, the count of acknowledgements (up to '50/50') and a
space."""
INDENT = TIME_WIDTH + STATE_WIDTH
"""Continuation lines start under the text (in a 1:1 chat)."""
SYSTEM_MARK = "· "
"""Before a system line's text, where a message has its sender's name."""
COUNTDOWN_EVERY = 1.0
"""Seconds between refreshes of the retry countdowns on queued messages (they count
seconds)."""


@dataclass
class _Block:
    """One rendered item: a message's lines, or a separator (message index None)."""

    lines: list[Strip]
    message: int | None


class ConversationView(ScrollView, can_focus=True):
    """Scrollback of one chat. The app feeds it views; it asks for older pages by message."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "conversation--time",
        "conversation--me",
        "conversation--them",
        "conversation--status",
        "conversation--failed",
        "conversation--day",
        "conversation--marker",
        "conversation--quote",
        "conversation--cursor",
        "conversation--notice",
        "conversation--system",
    }
    DEFAULT_CSS = """
    ConversationView { background: $surface; }
    ConversationView > .conversation--time { color: $text-muted; }
    ConversationView > .conversation--me { color: $success; text-style: bold; }
    ConversationView > .conversation--them { color: $accent; text-style: bold; }
    ConversationView > .conversation--status { color: $text-muted; }
    ConversationView > .conversation--failed { color: $error; text-style: bold; }
    ConversationView > .conversation--day { color: $text-muted; }
    ConversationView > .conversation--marker { color: $warning; }
    ConversationView > .conversation--quote { color: $text-muted; text-style: italic; }
    ConversationView > .conversation--cursor { background: $boost; }
    ConversationView > .conversation--notice { color: $text-muted; text-style: italic; }
    ConversationView > .conversation--system { color: $secondary; text-style: italic; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Previous message", show=False),
        Binding("down", "cursor(1)", "Next message", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "oldest", "Oldest", show=False),
        Binding("end", "newest", "Newest", show=False),
        Binding("r", "reply", "Reply"),
        Binding("t", "trace", "Trace"),
        Binding("escape", "clear_cursor", "Unselect", show=False),
    ]

    cursor: reactive[int | None] = reactive(None, init=False)
    """Index into the loaded messages of the selected one (None: nothing selected)."""

    class OlderWanted(Message):
        """The user reached the top: load the page before `before` (a message id)."""

        def __init__(self, chat_id: str, before: str) -> None:
            super().__init__()
            self.chat_id = chat_id
            self.before = before

    class NewerWanted(Message):
        """The user reached the bottom of a stretch opened at a found message: load the
        page after `after` (a message id)."""

        def __init__(self, chat_id: str, after: str) -> None:
            super().__init__()
            self.chat_id = chat_id
            self.after = after

    class NewestWanted(Message):
        """End, in a stretch that does not reach the newest message: open the newest page."""

        def __init__(self, chat_id: str) -> None:
            super().__init__()
            self.chat_id = chat_id

    class QuoteWanted(Message):
        """A reply quotes a message that is not loaded."""

        def __init__(self, message_id: str) -> None:
            super().__init__()
            self.message_id = message_id

    class Action(Message):
        """Reply to / trace the selected message."""

        def __init__(self, action: str, message: MessageView) -> None:
            super().__init__()
            self.action = action
            self.message = message

    def __init__(
        self,
        *,
        names: Callable[[MessageView], str] | None = None,
        clock_fn: Callable[[], float] = time.time,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.chat_id: str | None = None
        self.messages: list[MessageView] = []
        self._index: dict[str, int] = {}
        self._quotes: dict[str, MessageView] = {}
        self._asked_quotes: set[str] = set()
        self._blocks: list[_Block] = []
        self._lines: list[Strip] = []
        self._owner: list[int | None] = []
        self._message_block: dict[int, int] = {}
        self._width = 0
        self._read_marker: str | None = None
        self._has_older = False
        self._loading_older = False
        self._has_newer = False
        """The newest messages are not loaded (a stretch opened at a found message)."""
        self._loading_newer = False
        self._follow = True
        self._names = names or (lambda m: "me" if m.outgoing else m.sender[:12])
        self._now = clock_fn
        self.group = False
        """The open chat is a group: the state column holds the delivery count."""
        self.channel = False
        """The open chat is a community channel: the state column says 'seen by n'."""

    # ---- feeding ---------------------------------------------------------------------
    def show_chat(
        self,
        chat_id: str,
        messages: Sequence[MessageView],
        *,
        unread: int,
        has_older: bool,
        group: bool = False,
        channel: bool = False,
    ) -> None:
        """Replace the content with a chat's newest page; the read marker sits above the
        first of the last `unread` incoming messages (system lines are never unread)."""
        self.chat_id = chat_id
        self.group = group
        self.channel = channel
        self.messages = list(messages)
        self._reindex()
        self._quotes.clear()
        self._asked_quotes.clear()
        self._has_older = has_older
        self._loading_older = False
        self._has_newer = self._loading_newer = False
        self._read_marker = None
        if unread:
            incoming = [m for m in self.messages if not m.outgoing and m.kind != "system"]
            if incoming:
                self._read_marker = incoming[max(0, len(incoming) - unread)].id
        self.cursor = None
        self._follow = True
        self._rebuild()
        self._to_bottom()

    def show_window(
        self,
        chat_id: str,
        messages: Sequence[MessageView],
        *,
        focus: str,
        has_older: bool,
        has_newer: bool,
    ) -> None:
        """Replace the content with a stretch of a chat around message `focus` (found by
        search), that message selected and scrolled into view with some context above."""
        self.chat_id = chat_id
        self.messages = list(messages)
        self._reindex()
        self._quotes.clear()
        self._asked_quotes.clear()
        self._has_older, self._has_newer = has_older, has_newer
        self._loading_older = self._loading_newer = False
        self._read_marker = None
        self._follow = False
        self.set_reactive(ConversationView.cursor, self._index.get(focus))
        self._rebuild()
        self.call_after_refresh(self._scroll_to_cursor)

    def _scroll_to_cursor(self) -> None:
        """The selected message a third of the way down, so what led to it shows too."""
        block = self._message_block.get(self.cursor) if self.cursor is not None else None
        if block is None:
            return
        top = sum(len(b.lines) for b in self._blocks[:block])
        self.scroll_to(y=max(0, top - self.size.height // 3), animate=False, immediate=True)
        self.refresh()

    def append_page(self, chat_id: str, newer: Sequence[MessageView], *, has_newer: bool) -> None:
        """Add a newer page below what is loaded (scrolling down a found stretch)."""
        if chat_id != self.chat_id:
            return
        self._loading_newer = False
        self._has_newer = has_newer
        self.messages += [m for m in newer if m.id not in self._index]
        self._reindex()
        self._rebuild()

    def _to_bottom(self) -> None:
        """Scroll to the newest line once the new virtual size has been laid out."""
        self._follow = True
        self.call_after_refresh(self._scroll_end_now)

    def _scroll_end_now(self) -> None:
        if not self._has_newer:  # a found stretch came meanwhile: it has its own place
            self.scroll_end(animate=False, immediate=True)

    def set_group(self, group: bool) -> None:
        """The open chat turned out to be a group (its view came after it was opened)."""
        if group != self.group:
            self.group = group
            self._rebuild()

    def set_channel(self, channel: bool) -> None:
        """The open chat turned out to be a community channel."""
        if channel != self.channel:
            self.channel = channel
            self._rebuild()

    def clear_chat(self) -> None:
        self.chat_id = None
        self.group = False
        self.channel = False
        self.messages = []
        self._reindex()
        self.cursor = None
        self._rebuild()

    def prepend(self, chat_id: str, older: Sequence[MessageView], *, has_older: bool) -> None:
        """Add an older page above what is loaded, keeping the view where it was."""
        if chat_id != self.chat_id:
            return
        self._loading_older = False
        self._has_older = has_older
        fresh = [m for m in older if m.id not in self._index]
        if not fresh:
            self._rebuild()
            return
        before = len(self._lines)
        selected = self.messages[self.cursor].id if self.cursor is not None else None
        self.messages = fresh + self.messages
        self._reindex()
        if selected is not None:
            self.set_reactive(ConversationView.cursor, self._index[selected])
        self._rebuild()
        target = self.scroll_y + len(self._lines) - before
        # After the next layout, when the taller virtual size is known.
        self.call_after_refresh(self.scroll_to, y=target, animate=False, immediate=True)

    def add(self, message: MessageView) -> None:
        """A new message in this chat (ours just queued, or one received)."""
        if message.chat_id != self.chat_id:
            return
        if message.id in self._index:
            self.update(message)
            return
        if self._has_newer:
            # Beyond the loaded stretch: it shows when the reader reaches the newest; but
            # what the user just sent they expect to see now, at the end of the chat.
            if message.outgoing:
                self.post_message(self.NewestWanted(message.chat_id))
            return
        at_bottom = self._follow or self.scroll_y >= self.max_scroll_y
        previous = self.messages[-1] if self.messages else None
        self.messages.append(message)
        position = len(self.messages) - 1
        self._index[message.id] = position
        if previous is None or not self._width:
            self._rebuild()  # the first message replaces the "no messages yet" notice
        else:
            # Append only the new block(s): re-rendering the whole scrollback for every
            # arrival would make a busy chat cost O(n) per message.
            blocks: list[_Block] = []
            day = day_key(message.timestamp)
            if day != day_key(previous.timestamp):
                blocks.append(self._separator(day_label(day, day_key(self._now())), "day"))
            self._message_block[position] = len(self._blocks) + len(blocks)
            blocks.append(_Block(self._render_message(message), position))
            for block in blocks:
                self._blocks.append(block)
                self._lines.extend(block.lines)
                self._owner.extend([block.message] * len(block.lines))
            self.virtual_size = Size(self._width, len(self._lines))
            self.refresh()
        if at_bottom:
            self._to_bottom()

    def update(self, message: MessageView) -> None:
        """A message changed state: re-render its block only."""
        position = self._index.get(message.id)
        if position is None:
            if message.id in self._quotes:
                self._quotes[message.id] = message
            return
        self.messages[position] = message
        block = self._message_block.get(position)
        if block is None or not self._width:
            return
        self._blocks[block] = _Block(self._render_message(message), position)
        self._flatten()
        self.refresh()

    def set_quote(self, message: MessageView) -> None:
        self._quotes[message.id] = message
        self._rebuild()

    def mark_read(self) -> None:
        """Drop the read marker (the user has seen the chat)."""
        if self._read_marker is not None:
            self._read_marker = None
            self._rebuild()

    @property
    def selected(self) -> MessageView | None:
        return self.messages[self.cursor] if self.cursor is not None else None

    def last_failed(self) -> MessageView | None:
        for message in reversed(self.messages):
            if message.outgoing and message.state == "failed":
                return message
        return None

    def visible_text(self) -> str:
        """All loaded lines as plain text (tests and the smoke check read this)."""
        return "\n".join(strip.text.rstrip() for strip in self._lines)

    # ---- rendering -------------------------------------------------------------------
    def _reindex(self) -> None:
        self._index = {m.id: i for i, m in enumerate(self.messages)}

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"conversation--{name}", partial=True)

    @property
    def _console(self) -> Console:
        return self.app.console

    @property
    def _indent(self) -> int:
        if self.channel:
            return TIME_WIDTH + CHANNEL_STATE_WIDTH
        return TIME_WIDTH + (GROUP_STATE_WIDTH if self.group else STATE_WIDTH)

    def _render_text(self, text: Text, indent: int | None = None) -> list[Strip]:
        """Wrap `text` under a hanging indent; the first line's indent is filled by caller."""
        width = max(self._width - (self._indent if indent is None else indent), 8)
        lines = text.wrap(self._console, width, overflow="fold")
        return [Strip(line.render(self._console), line.cell_len) for line in lines]

    def _separator(self, label: str, style_name: str) -> _Block:
        width = max(self._width, len(label) + 4)
        text = Text(f" {label} ".center(width, "─"), style=self._style(style_name))
        text.truncate(width)
        return _Block([Strip(text.render(self._console), text.cell_len)], None)

    def _render_message(self, message: MessageView) -> list[Strip]:
        lines: list[Strip] = []
        if message.reply_to:
            lines.extend(self._render_quote(message.reply_to))
        body = Text()
        if message.kind == "system":  # about the chat, not written by anyone
            body.append(SYSTEM_MARK + message.text, self._style("system"))
        else:
            body.append(self._names(message), self._style("me" if message.outgoing else "them"))
            body.append(": ")
            body.append(message.text)
        wrapped = self._render_text(body)
        failed = message.outgoing and message.state == "failed"
        state_style = self._style("failed" if failed else "status")
        if self.channel:
            status, width = channel_status(message), CHANNEL_STATE_WIDTH
        elif self.group:
            status, width = group_status(message), GROUP_STATE_WIDTH
        else:
            status = state_glyph(message.state) if message.outgoing else ""
            width = STATE_WIDTH
        prefix = Text(clock(message.timestamp).ljust(TIME_WIDTH), self._style("time"))
        prefix.append(status.ljust(width), state_style)
        first = Strip(prefix.render(self._console), prefix.cell_len)
        pad = Strip.blank(self._indent)
        for i, strip in enumerate(wrapped):
            lines.append(Strip.join([first if i == 0 else pad, strip]))
        detail = state_detail(message, self._now())
        if detail:
            for strip in self._render_text(Text(detail, state_style)):
                lines.append(Strip.join([pad, strip]))
        return lines

    def _render_quote(self, quoted_id: str) -> list[Strip]:
        quoted = self._quotes.get(quoted_id)
        position = self._index.get(quoted_id)
        if position is not None:
            quoted = self.messages[position]
        if quoted is None:
            if quoted_id not in self._asked_quotes:
                self._asked_quotes.add(quoted_id)
                self.post_message(self.QuoteWanted(quoted_id))
            words = "↱ in reply to an earlier message"
        else:
            snippet = quoted.text.replace("\n", " ")
            if len(snippet) > 60:
                snippet = snippet[:59] + "…"
            words = f"↱ {self._names(quoted)}: {snippet}"
        text = Text(words, self._style("quote"))
        text.truncate(max(self._width - self._indent, 8), overflow="ellipsis")
        indent = Strip.blank(self._indent)
        return [Strip.join([indent, Strip(text.render(self._console), text.cell_len)])]

    def names_changed(self) -> None:
        """Someone was renamed: render the loaded messages again with the new names."""
        self._rebuild()

    def _rebuild(self) -> None:
        """Render every loaded message at the current width."""
        self._blocks = []
        self._message_block = {}
        if not self._width:
            self._flatten()
            return
        if self.chat_id is not None and self._has_older:
            self._blocks.append(self._separator("↑ older messages load as you scroll", "notice"))
        elif self.chat_id is not None and not self.messages:
            self._blocks.append(self._separator("no messages yet: say hello", "notice"))
        today = day_key(self._now())
        previous_day = None
        for i, message in enumerate(self.messages):
            day = day_key(message.timestamp)
            if day != previous_day:
                self._blocks.append(self._separator(day_label(day, today), "day"))
                previous_day = day
            if message.id == self._read_marker:
                self._blocks.append(self._separator("new", "marker"))
            self._message_block[i] = len(self._blocks)
            self._blocks.append(_Block(self._render_message(message), i))
        if self.chat_id is not None and self._has_newer:
            self._blocks.append(
                self._separator("↓ newer messages load as you scroll (End: the newest)", "notice")
            )
        self._flatten()

    def _flatten(self) -> None:
        self._lines = []
        self._owner = []
        for block in self._blocks:
            self._lines.extend(block.lines)
            self._owner.extend([block.message] * len(block.lines))
        self.virtual_size = Size(self._width, len(self._lines))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        base = self.rich_style
        if index >= len(self._lines):
            return Strip.blank(width, base)
        strip = self._lines[index]
        if self.cursor is not None and self._owner[index] == self.cursor:
            strip = strip.extend_cell_length(width).apply_style(self._style("cursor"))
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_offsets(scroll_x, index)

    # ---- events ------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.set_interval(COUNTDOWN_EVERY, self._tick_countdowns)

    def _tick_countdowns(self) -> None:
        """Keep 'retrying in N s' honest between state changes."""
        changed = False
        for position, message in enumerate(self.messages):
            if message.outgoing and message.state == "queued" and message.next_attempt_at:
                block = self._message_block.get(position)
                if block is not None and self._width:
                    self._blocks[block] = _Block(self._render_message(message), position)
                    changed = True
        if changed:
            self._flatten()

    def on_resize(self, event: events.Resize) -> None:
        at_bottom = self._follow
        if event.size.width != self._width:
            self._width = event.size.width
            self._rebuild()
            if self._has_newer:  # a found stretch: keep the found message in view
                self.call_after_refresh(self._scroll_to_cursor)
            elif at_bottom:
                self._to_bottom()
        elif at_bottom and not self._has_newer:
            # Shorter (a hint above the health bar took rows): the newest line stays in view.
            self._to_bottom()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._follow = new >= self.max_scroll_y
        if new <= 0 and self._has_older and not self._loading_older and self.messages:
            self._loading_older = True
            assert self.chat_id is not None
            self.post_message(self.OlderWanted(self.chat_id, self.messages[0].id))
        at_bottom = new >= self.max_scroll_y and self.max_scroll_y > 0
        if at_bottom and self._has_newer and not self._loading_newer and self.messages:
            self._loading_newer = True
            assert self.chat_id is not None
            self.post_message(self.NewerWanted(self.chat_id, self.messages[-1].id))

    def watch_cursor(self, cursor: int | None) -> None:
        self.refresh()
        if cursor is None:
            return
        block = self._message_block.get(cursor)
        if block is None:
            return
        top = sum(len(b.lines) for b in self._blocks[:block])
        height = len(self._blocks[block].lines)
        if top < self.scroll_y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif top + height > self.scroll_y + self.size.height:
            self.scroll_to(y=top + height - self.size.height, animate=False, immediate=True)

    # ---- actions -----------------------------------------------------------------------
    def action_cursor(self, step: int) -> None:
        if not self.messages:
            return
        if self.cursor is None:
            self.cursor = len(self.messages) - 1
        else:
            self.cursor = min(max(self.cursor + step, 0), len(self.messages) - 1)
        if self.cursor == 0 and step < 0:
            self.scroll_home(animate=False, immediate=True)

    def action_page(self, direction: int) -> None:
        self.scroll_to(y=self.scroll_y + direction * max(self.size.height - 1, 1), animate=False)

    def action_oldest(self) -> None:
        self.scroll_home(animate=False, immediate=True)

    def action_newest(self) -> None:
        self.cursor = None
        if self._has_newer and self.chat_id is not None:
            self.post_message(self.NewestWanted(self.chat_id))
            return
        self.scroll_end(animate=False, immediate=True)

    def action_clear_cursor(self) -> None:
        self.cursor = None

    def action_reply(self) -> None:
        if self.selected is not None and self.selected.kind != "system":
            self.post_message(self.Action("reply", self.selected))

    def action_trace(self) -> None:
        target = self.selected or (self.messages[-1] if self.messages else None)
        if target is not None:
            self.post_message(self.Action("trace", target))
