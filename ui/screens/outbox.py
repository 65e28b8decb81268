"""The outbox: everything not yet delivered, across chats and request flows, with the reason,
the attempt count and the next attempt. r retries one, R retries all, d discards (a group
invitation: r sends a failed one again, d withdraws it).

A retry while there is no peer attempts nothing (it would only spend the message's budget):
the screen says so, and a failed message is queued again with a fresh budget."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from chat.events import (
    ContactUpdated,
    Event,
    HealthUpdated,
    InviteUpdated,
    InviteView,
    MessageAdded,
    MessageUpdated,
    OutboxItemView,
)
from ui.format import outbox_row, retry_notice
from ui.host import ChatHost, host
from ui.widgets.health_bar import HealthBar


def row_key(item: OutboxItemView) -> str:
    """A row's key: its kind and id. Ids are unique only within a kind: a group invitation
    has the id of its `invited` change, and so has the system line that change shows as,
    both in the outbox until delivered."""
    return f"{item.kind}:{item.id}"


class OutboxScreen(Screen[None]):
    AUTO_FOCUS = "#outbox-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back"),
        Binding("r", "retry", "Retry"),
        Binding("R", "retry_all", "Retry all"),
        Binding("d", "discard", "Discard"),
        Binding("t", "trace", "Trace"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.items: list[OutboxItemView] = []

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="outbox-pane"):
            yield Static("Outbox: not yet delivered", classes="pane-title")
            yield Static("", id="outbox-summary", classes="muted")
            yield DataTable(id="outbox-table", cursor_type="row", zebra_stripes=True)
        yield HealthBar(id="health")
        yield Footer()

    async def on_mount(self) -> None:
        self.columns = self.query_one(DataTable).add_columns(
            "what", "summary", "state", "reason", "attempts", "next attempt"
        )
        self.set_interval(1.0, self._tick)
        messenger = self.chinwag.messenger
        if messenger is not None:
            self.query_one(HealthBar).show(messenger.health())
        await self.reload()

    async def reload(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None:
            return
        self.show_items(await self.chinwag.call(messenger.outbox) or [])

    def show_items(self, items: list[OutboxItemView]) -> None:
        self.items = items
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        now = self.chinwag.clock()
        for item in self.items:
            table.add_row(*outbox_row(item, now), key=row_key(item))
        if self.items:
            table.move_cursor(row=min(row, len(self.items) - 1))
        failed = sum(1 for i in self.items if i.state == "failed")
        self.query_one("#outbox-summary", Static).update(
            f"{len(self.items)} waiting, {failed} failed"
            if self.items
            else "Nothing waiting: everything you sent was delivered."
        )

    def _tick(self) -> None:
        """The "next attempt" countdowns move each second."""
        table = self.query_one(DataTable)
        now = self.chinwag.clock()
        for item in self.items:
            key = row_key(item)
            if item.state != "failed" and item.next_attempt_at and key in table.rows:
                table.update_cell(key, self.columns[-1], outbox_row(item, now)[-1])

    @work(exclusive=True, group="outbox-reload")
    async def reload_soon(self) -> None:
        await self.reload()

    def handle_event(self, event: Event) -> None:
        if isinstance(event, MessageAdded | MessageUpdated | ContactUpdated | InviteUpdated):
            self.reload_soon()
        elif isinstance(event, HealthUpdated):
            self.query_one(HealthBar).show(event.health)

    @property
    def selected(self) -> OutboxItemView | None:
        table = self.query_one(DataTable)
        if not self.items or table.cursor_row >= len(self.items):
            return None
        return self.items[table.cursor_row]

    async def action_retry(self) -> None:
        messenger = self.chinwag.messenger
        item = self.selected
        if messenger is None or item is None:
            return
        if item.kind == "group_invite":
            invite = await self._invite(item.id)
            if invite is not None:
                await self.chinwag.call(messenger.add_group_member, invite.group_id, invite.to)
            await self.reload()
            return
        if item.kind != "message":
            self.notify(
                "Contact requests are re-sent on their own schedule; cancel and add again "
                "to start over.",
                severity="warning",
            )
            return
        updated = await self.chinwag.call(messenger.retry, item.id)
        if updated is not None:
            self.notify(retry_notice(updated))
        await self.reload()

    async def action_retry_all(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None:
            return
        count = await self.chinwag.call(messenger.retry_all)
        if count is not None and messenger.health().peers == 0:
            self.notify(
                f"There is no peer right now: {count} failed item(s) queued again with a "
                "fresh budget; everything goes as soon as chinwag reconnects."
            )
        elif count is not None:
            self.notify(f"Retrying {count} item(s) now.")
        await self.reload()

    async def action_discard(self) -> None:
        messenger = self.chinwag.messenger
        item = self.selected
        if messenger is None or item is None:
            return
        if item.kind == "message":
            await self.chinwag.call(messenger.discard, item.id)
        elif item.kind == "group_invite":
            invite = await self._invite(item.id)
            if invite is not None:
                await self.chinwag.call(messenger.remove_group_member, invite.group_id, invite.to)
        else:
            await self.chinwag.call(messenger.cancel_contact_request, item.id)
        await self.reload()

    async def action_trace(self) -> None:
        from ui.screens.trace import TraceScreen

        messenger = self.chinwag.messenger
        item = self.selected
        if messenger is None or item is None or item.kind != "message":
            return
        message = await self.chinwag.call(messenger.message, item.id)
        if message is None:
            return
        groups = await self.chinwag.call(messenger.groups) or []
        group = next((g for g in groups if g.id == message.chat_id), None)
        names = {m.chat_key: m.display_name for m in group.members} if group else {}
        self.app.push_screen(TraceScreen(message, group=group, names=names))

    async def _invite(self, invite_id: str) -> InviteView | None:
        messenger = self.chinwag.messenger
        if messenger is None:
            return None
        invites = await self.chinwag.call(messenger.invites) or []
        return next((i for i in invites if i.id == invite_id), None)

    def action_close(self) -> None:
        self.dismiss(None)
