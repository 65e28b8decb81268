"""Contacts: add one by pasting their link, answer incoming requests (with their intro),
watch outgoing ones (state, how often sent, next re-send), open a chat, verify by emoji.
How many requests spam protection dropped is said under the table's help line.

Group invitations sit beside the requests, in their own list under the contacts: the ones
we received (accept or decline; Enter opens the group once joined) and the ones we sent
(their state and next re-send)."""

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
    InviteUpdated,
    InviteView,
    StrangerRequestsDropped,
)
from ui.format import contact_state, invite_state, invite_who
from ui.host import ChatHost, host
from ui.widgets.health_bar import HealthBar
from ui.widgets.link_input import LinkInput

ORDER = {"request_received": 0, "request_sent": 1, "mutual": 2}
LIST_HINT = "a accept · d decline · c cancel your request · v verify · Enter open chat"
FIELD_HINT = "Enter adds the contact · Tab moves on to the list of contacts and requests"
INVITES_HINT = "a accept · d decline the group invitation · Enter open the group once joined"
INVITE_ORDER = {"invited": 0, "failed": 1}


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
        self.invites: dict[str, InviteView] = {}

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
            yield Static("Group invitations", id="invites-title", classes="pane-title")
            yield DataTable(id="invites-table", cursor_type="row", zebra_stripes=True)
        yield HealthBar(id="health")
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one("#contacts-table", DataTable)
        self.columns = table.add_columns("name", "state", "intro", "chat key")
        invites = self.query_one("#invites-table", DataTable)
        self.invite_columns = invites.add_columns("group", "who", "state")
        self.show_invites([])
        self.show_dropped(0)
        self.set_interval(1.0, self._tick)  # "next in N s" counts down
        messenger = self.chinwag.messenger
        if messenger is not None:
            health = messenger.health()
            self.query_one(HealthBar).show(health)
            self.show_dropped(health.stranger_requests_dropped)
            self.show_contacts(await self.chinwag.call(messenger.contacts) or [])
            self.show_invites(await self.chinwag.call(messenger.invites) or [])

    def show_invites(self, invites: list[InviteView]) -> None:
        self.invites = {invite.id: invite for invite in invites}
        self._redraw_invites()

    def _redraw_invites(self) -> None:
        table = self.query_one("#invites-table", DataTable)
        shown = bool(self.invites)
        table.display = self.query_one("#invites-title").display = shown
        selected = self.selected_invite
        table.clear()
        now = self.chinwag.clock()
        names = {c.chat_key: c.display_name for c in self.contacts.values()}
        ordered = sorted(
            self.invites.values(),
            key=lambda i: (i.direction != "received", INVITE_ORDER.get(i.state, 2), -i.created_at),
        )
        for invite in ordered:
            table.add_row(
                invite.name, invite_who(invite, names), invite_state(invite, now), key=invite.id
            )
        if selected is not None and selected.id in self.invites:
            table.move_cursor(row=table.get_row_index(selected.id))

    @property
    def selected_invite(self) -> InviteView | None:
        table = self.query_one("#invites-table", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.invites.get(key) if key is not None else None

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
        table = self.query_one("#contacts-table", DataTable)
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
        table = self.query_one("#contacts-table", DataTable)
        now = self.chinwag.clock()
        for contact in self.contacts.values():
            if contact.state == "request_sent" and contact.chat_key in table.rows:
                table.update_cell(contact.chat_key, self.columns[1], contact_state(contact, now))
        invites = self.query_one("#invites-table", DataTable)
        for invite in self.invites.values():
            if invite.state == "invited" and invite.id in invites.rows:
                invites.update_cell(invite.id, self.invite_columns[2], invite_state(invite, now))

    @property
    def selected(self) -> ContactView | None:
        table = self.query_one("#contacts-table", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.contacts.get(key) if key is not None else None

    def handle_event(self, event: Event) -> None:
        if isinstance(event, ContactUpdated):
            self.contacts[event.contact.chat_key] = event.contact
            self._redraw()
        elif isinstance(event, InviteUpdated):
            self.invites[event.invite.id] = event.invite
            self._redraw_invites()
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
            self.query_one("#contacts-table", DataTable).focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self._add()  # Enter in either field sends: the intro is optional

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self._add()

    def on_descendant_focus(self) -> None:
        # The row keys act in the list only: the hint says what the focused part does.
        in_list = isinstance(self.focused, DataTable)
        hint = FIELD_HINT
        if in_list:
            hint = INVITES_HINT if self._on_invites else LIST_HINT
        self.query_one("#contacts-hint", Static).update(hint)
        self.refresh_bindings()

    @property
    def _on_invites(self) -> bool:
        focused = self.focused
        return isinstance(focused, DataTable) and focused.id == "invites-table"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Letters type into the inputs; the row keys act only while the table has focus.
        if action in ("accept", "decline", "cancel_request", "verify", "open_chat"):
            if action in ("cancel_request", "verify") and self._on_invites:
                return False
            return isinstance(self.focused, DataTable)
        return True

    async def _answer_invite(self, accept: bool) -> None:
        messenger = self.chinwag.messenger
        invite = self.selected_invite
        if messenger is None or invite is None:
            return
        if invite.direction != "received" or invite.state != "invited":
            self.notify("Only an open invitation you received can be answered.")
            return
        command = messenger.accept_invite if accept else messenger.decline_invite
        updated = await self.chinwag.call(command, invite.id)
        if updated is not None:
            self.invites[updated.id] = updated
            self._redraw_invites()
            if accept:
                self.notify(f"You joined {updated.name}; Enter opens its chat.")

    async def _answer(self, verb: str) -> None:
        if self._on_invites and verb in ("accept", "decline"):
            await self._answer_invite(verb == "accept")
            return
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
        if self._on_invites:
            invite = self.selected_invite
            if invite is not None and invite.state == "joined":
                self.dismiss(invite.group_id)
            elif invite is not None:
                self.notify("The group opens once the invitation is accepted.")
            return
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
