"""Bandwidth: what the node sends and receives, per protocol and, for relay, per message kind
(gossip control, subscriptions, chat messages, receipts and SDS syncs, contact and join
requests), over the last minute, the last hour and since start. Read from the messenger
every few seconds (F8 or the palette opens it; Escape goes back)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from chat.events import BandwidthView, Event, HealthUpdated
from ui.format import bandwidth_row, bandwidth_summary
from ui.host import ChatHost, host
from ui.widgets.health_bar import HealthBar

REFRESH = 2.0
"""Seconds between readings: the meter's buckets are 10 s, its minute moves smoothly."""
COLUMNS = ("", "in/s 1 min", "out/s 1 min", "in/s 1 h", "out/s 1 h", "in total", "out total")


class BandwidthScreen(Screen[None]):
    AUTO_FOCUS = "#bandwidth-protocols"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Back")]

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="bandwidth-pane"):
            yield Static("Bandwidth", classes="pane-title")
            yield Static("", id="bandwidth-summary", classes="muted")
            yield Static("Per protocol", classes="pane-title")
            yield DataTable(id="bandwidth-protocols", cursor_type="row", zebra_stripes=True)
            yield Static("Relay, by what it carries (messages in / out)", classes="pane-title")
            yield DataTable(id="bandwidth-kinds", cursor_type="row", zebra_stripes=True)
        yield HealthBar(id="health")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#bandwidth-protocols", DataTable).add_columns(*COLUMNS)
        self.query_one("#bandwidth-kinds", DataTable).add_columns(*COLUMNS, "messages")
        messenger = self.chinwag.messenger
        if messenger is not None:
            self.query_one(HealthBar).show(messenger.health())
        self.set_interval(REFRESH, self.reload)
        await self.reload()

    async def reload(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None:
            return
        view = await self.chinwag.call(messenger.bandwidth)
        if view is not None:
            self.show(view)

    def show(self, view: BandwidthView) -> None:
        self.query_one("#bandwidth-summary", Static).update(bandwidth_summary(view))
        for table_id, lines, messages in (
            ("#bandwidth-protocols", [*view.protocols, view.transport], False),
            ("#bandwidth-kinds", view.kinds, True),
        ):
            table = self.query_one(table_id, DataTable)
            row = table.cursor_row
            table.clear()
            for line in lines:
                table.add_row(*bandwidth_row(line, messages=messages), key=line.name)
            if lines:
                table.move_cursor(row=min(row, len(lines) - 1))

    def handle_event(self, event: Event) -> None:
        if isinstance(event, HealthUpdated):
            self.query_one(HealthBar).show(event.health)

    def action_close(self) -> None:
        self.dismiss(None)
