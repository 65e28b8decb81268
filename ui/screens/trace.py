"""A message's delivery trace: every state it went through, when, and the evidence."""

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

from chat.events import Event, MessageUpdated, MessageView, TraceStep
from ui.format import STATE_WORDS, message_status, state_glyph
from ui.host import host


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

    def __init__(self, message: MessageView) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="trace-box", classes="dialog"):
            yield Static("Delivery trace", classes="dialog-title")
            yield Static("", id="trace-head", markup=False)
            yield DataTable(id="trace-table", cursor_type="row")
            yield Static("Esc closes", classes="muted")

    async def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("time", "state", "evidence")
        await self.reload()

    async def reload(self) -> None:
        app = host(self)
        message = self.message
        head = self.query_one("#trace-head", Static)
        direction = "to" if message.outgoing else "from"
        snippet = message.text.replace("\n", " ")[:70]
        status = message_status(message, app.clock()) or STATE_WORDS.get(message.state, "")
        head.update(
            f"{message.id}  {direction} chat {message.chat_id[:8]}\n“{snippet}”\n"
            f"now: {STATE_WORDS.get(message.state, message.state)}  {status}"
        )
        messenger = app.messenger
        if messenger is None:
            return
        self.show_steps(await app.call(messenger.trace, message.id) or [])

    def show_steps(self, steps: list[TraceStep]) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for step in steps:
            arrow = f"{step.from_state} → " if step.from_state else ""
            table.add_row(
                moment(step.at),
                f"{arrow}{state_glyph(step.to_state)} {step.to_state}",
                evidence_text(step.evidence),
            )

    @work(exclusive=True, group="trace-reload")
    async def reload_soon(self) -> None:
        await self.reload()

    def handle_event(self, event: Event) -> None:
        if isinstance(event, MessageUpdated) and event.message.id == self.message.id:
            self.message = event.message
            self.reload_soon()

    def action_close(self) -> None:
        self.dismiss(None)
