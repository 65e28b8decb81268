"""Contacts: add one by pasting their link, answer incoming requests (with their intro),
watch outgoing ones (state, how often sent, next re-send), open a chat, verify by emoji.
How many requests spam protection dropped is said under the table's help line."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Static

from chat.events import (
    ContactUpdated,
    ContactView,
    Event,
    HealthUpdated,
    StrangerRequestsDropped,
)
from ui.format import contact_state
from ui.host import ChatHost, host
from ui.widgets.health_bar import HealthBar
from ui.widgets.link_input import LinkInput

ORDER = {"request_received": 0, "request_sent": 1, "mutual": 2}
LIST_HINT = "a accept · d decline · c cancel your request · v verify · Enter open chat"
FIELD_HINT = "Enter adds the contact · Tab moves on to the list of contacts and requests"


class ContactsScreen(Screen[str | None]):
    """Dismisses with a chat id when the user opens a contact's chat."""

    AUTO_FOCUS = "#contact-link"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back"),
        Binding("a", "accept", "Accept"),
        Binding("d", "decline", "Decline"),
        Binding("c", "cancel_request", "Cancel request"),
        Binding("v", "verify", "Verify"),
        Binding("enter", "open_chat", "Open chat", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.contacts: dict[str, ContactView] = {}

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="contacts-pane"):
            yield Static("Contacts", classes="pane-title")
            with Horizontal(id="add-row"):
                yield LinkInput(
                    placeholder="paste a contact link to add someone", id="contact-link"
                )
                yield Input(placeholder="intro (optional, before Enter)", id="contact-intro")
                yield Button("Add", variant="primary", id="add-contact")
            yield Static(FIELD_HINT, id="contacts-hint", classes="muted")
            yield Static("", id="spam-line", classes="muted")
            yield DataTable(id="contacts-table", cursor_type="row", zebra_stripes=True)
        yield HealthBar(id="health")
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one(DataTable)
        self.columns = table.add_columns("name", "state", "intro", "chat key")
        self.show_dropped(0)
        self.set_interval(1.0, self._tick)  # "next in N s" counts down
        messenger = self.chinwag.messenger
        if messenger is not None:
            health = messenger.health()
            self.query_one(HealthBar).show(health)
            self.show_dropped(health.stranger_requests_dropped)
            self.show_contacts(await self.chinwag.call(messenger.contacts) or [])

    def show_dropped(self, dropped: int) -> None:
        """Say how many requests from strangers spam protection dropped (none: no line)."""
        line = self.query_one("#spam-line", Static)
        line.display = dropped > 0
        noun = "request" if dropped == 1 else "requests"
        line.update(f"{dropped} {noun} dropped (spam protection)")

    def show_contacts(self, contacts: list[ContactView]) -> None:
        self.contacts = {contact.chat_key: contact for contact in contacts}
        self._redraw()

    def _redraw(self) -> None:
        table = self.query_one(DataTable)
        selected = self.selected
        table.clear()
        now = self.chinwag.clock()
        ordered = sorted(
            self.contacts.values(), key=lambda c: (ORDER.get(c.state, 3), -c.updated_at)
        )
        for contact in ordered:
            table.add_row(
                contact.display_name or "(no name)",
                contact_state(contact, now),
                contact.intro,
                contact.chat_key,
                key=contact.chat_key,
            )
        if selected is not None and selected.chat_key in self.contacts:
            table.move_cursor(row=table.get_row_index(selected.chat_key))

    def _tick(self) -> None:
        table = self.query_one(DataTable)
        now = self.chinwag.clock()
        for contact in self.contacts.values():
            if contact.state == "request_sent" and contact.chat_key in table.rows:
                table.update_cell(contact.chat_key, self.columns[1], contact_state(contact, now))

    @property
    def selected(self) -> ContactView | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.contacts.get(key) if key is not None else None

    def handle_event(self, event: Event) -> None:
        if isinstance(event, ContactUpdated):
            self.contacts[event.contact.chat_key] = event.contact
            self._redraw()
        elif isinstance(event, HealthUpdated):
            self.query_one(HealthBar).show(event.health)
            self.show_dropped(event.health.stranger_requests_dropped)
        elif isinstance(event, StrangerRequestsDropped):
            self.show_dropped(event.dropped)
            self.reload_soon()  # kept requests may have been dropped too

    @work(exclusive=True, group="contacts-reload")
    async def reload_soon(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is not None:
            self.show_contacts(await self.chinwag.call(messenger.contacts) or [])

    async def _add(self) -> None:
        messenger = self.chinwag.messenger
        link = self.query_one("#contact-link", Input)
        intro = self.query_one("#contact-intro", Input)
        if messenger is None or not link.value.strip():
            self.notify("Paste the contact link someone gave you.", severity="warning")
            return
        contact = await self.chinwag.call(messenger.add_contact, link.value.strip(), intro.value)
        if contact is not None:
            link.value = ""
            intro.value = ""
            self.contacts[contact.chat_key] = contact
            self._redraw()
            self.notify(f"Contact request sent to {contact.display_name or contact.chat_key}.")
            self.query_one(DataTable).focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self._add()  # Enter in either field sends: the intro is optional

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self._add()

    def on_descendant_focus(self) -> None:
        # The row keys act in the list only: the hint says what the focused part does.
        in_list = isinstance(self.focused, DataTable)
        self.query_one("#contacts-hint", Static).update(LIST_HINT if in_list else FIELD_HINT)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Letters type into the inputs; the row keys act only while the table has focus.
        if action in ("accept", "decline", "cancel_request", "verify", "open_chat"):
            return isinstance(self.focused, DataTable)
        return True

    async def _answer(self, verb: str) -> None:
        messenger = self.chinwag.messenger
        contact = self.selected
        if messenger is None or contact is None:
            return
        calls = {
            "accept": messenger.accept_contact,
            "decline": messenger.decline_contact,
            "cancel": messenger.cancel_contact_request,
        }
        updated = await self.chinwag.call(calls[verb], contact.chat_key)
        if updated is not None:
            self.contacts[updated.chat_key] = updated
            self._redraw()

    async def action_accept(self) -> None:
        await self._answer("accept")

    async def action_decline(self) -> None:
        await self._answer("decline")

    async def action_cancel_request(self) -> None:
        await self._answer("cancel")

    def action_verify(self) -> None:
        from ui.screens.verify import VerifyScreen

        contact = self.selected
        messenger = self.chinwag.messenger
        if contact is None or messenger is None:
            return
        if contact.state != "mutual":
            self.notify("Verify a contact once you both accepted.", severity="warning")
            return
        self.app.push_screen(VerifyScreen(contact))

    def action_open_chat(self) -> None:
        contact = self.selected
        if contact is not None and contact.chat_id is not None:
            self.dismiss(contact.chat_id)
        elif contact is not None:
            self.notify("The chat opens once both of you accepted.", severity="warning")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_chat()

    def action_close(self) -> None:
        self.dismiss(None)
