"""A message's delivery trace: every state it went through, when, and the evidence. For an
outgoing group message, each recipient too: acknowledged, missing, or left after it was sent
(not waited for)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from chat.events import Event, GroupUpdated, GroupView, MessageUpdated, MessageView, TraceStep
from ui.community_format import channel_delivery, channel_status
from ui.format import (
    STATE_WORDS,
    group_delivery,
    message_status,
    recipient_states,
    state_glyph,
)
from ui.host import host

MAX_STEP_ROWS = 20
MAX_MEMBER_ROWS = 12
TRACE_ROWS = 17
"""Rows of the trace box besides its tables (borders, head, titles, the last line)."""


def evidence_text(evidence: dict[str, Any]) -> str:
    parts = []
    for key, value in evidence.items():
        shown = value if isinstance(value, str | int | float) else json.dumps(value)
        parts.append(f"{key}={shown}")
    return ", ".join(parts)


def moment(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class TraceScreen(ModalScreen[None]):
    AUTO_FOCUS = "#trace-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close"),
    ]

    def __init__(
        self,
        message: MessageView,
        *,
        group: GroupView | None = None,
        names: dict[str, str] | None = None,
        channel: bool = False,
    ) -> None:
        super().__init__()
        self.message = message
        self.group = group
        """The message's group, for the per-member list (None in a 1:1 chat)."""
        self.names = names or {}
        self.channel = channel
        """A community channel's message: "seen by n", never "delivered"."""
        self.steps: list[TraceStep] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="trace-box", classes="dialog"):
            yield Static("Delivery trace", classes="dialog-title")
            yield Static("", id="trace-head", markup=False)
            yield DataTable(id="trace-table", cursor_type="row")
            yield Static("", id="trace-members-title", markup=False)
            yield DataTable(id="trace-members", cursor_type="row")
            yield Static("Esc closes", classes="muted")

    async def on_mount(self) -> None:
        self.query_one("#trace-table", DataTable).add_columns("time", "state", "evidence")
        self.query_one("#trace-members", DataTable).add_columns("member", "", "chat key")
        self.show_members()
        await self.reload()

    async def reload(self) -> None:
        app = host(self)
        message = self.message
        head = self.query_one("#trace-head", Static)
        direction = "to" if message.outgoing else "from"
        snippet = message.text.replace("\n", " ")[:70]
        status = message_status(message, app.clock()) or STATE_WORDS.get(message.state, "")
        words = STATE_WORDS.get(message.state, message.state)
        if self.group is not None and message.outgoing:
            words = group_delivery(message)
        if self.channel and message.outgoing:
            words, status = channel_delivery(message), channel_status(message)
        head.update(
            f"{message.id}  {direction} chat {message.chat_id[:8]}\n“{snippet}”\n"
            f"now: {words}  {status}"
        )
        messenger = app.messenger
        if messenger is None:
            return
        self.show_steps(await app.call(messenger.trace, message.id) or [])

    def show_steps(self, steps: list[TraceStep]) -> None:
        self.steps = steps
        self.show_members()
        table = self.query_one("#trace-table", DataTable)
        table.clear()
        for step in steps:
            arrow = f"{step.from_state} → " if step.from_state else ""
            table.add_row(
                moment(step.at),
                f"{arrow}{state_glyph(step.to_state)} {step.to_state}",
                evidence_text(step.evidence),
            )

    def on_resize(self) -> None:
        """Both tables in view on a small window: each scrolls within its share."""
        room = self.size.height - TRACE_ROWS
        members = self.query_one("#trace-members", DataTable)
        if members.display:
            share = max(3, min(MAX_MEMBER_ROWS, room // 2))
            members.styles.max_height = share
            room -= share
        steps = self.query_one("#trace-table", DataTable)
        steps.styles.max_height = max(3, min(MAX_STEP_ROWS, room))

    def show_members(self) -> None:
        """Each recipient of an outgoing group message and whether they acknowledged it."""
        title = self.query_one("#trace-members-title", Static)
        table = self.query_one("#trace-members", DataTable)
        shown = self.group is not None and self.message.outgoing
        title.display = table.display = shown
        if not shown:
            return
        self.on_resize()
        rows = recipient_states(self.message, self.steps, self.group)
        title.update(f"Members ({len(rows)} it was sent to)")
        table.clear()
        for chat_key, state in rows:
            table.add_row(self.names.get(chat_key) or chat_key[:16], state, chat_key)

    @work(exclusive=True, group="trace-reload")
    async def reload_soon(self) -> None:
        await self.reload()

    def handle_event(self, event: Event) -> None:
        if isinstance(event, MessageUpdated) and event.message.id == self.message.id:
            self.message = event.message
            self.reload_soon()
        elif isinstance(event, GroupUpdated) and event.group.id == self.message.chat_id:
            self.group = event.group
            self.show_members()

    def action_close(self) -> None:
        self.dismiss(None)
