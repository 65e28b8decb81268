"""A new private group: its name and the contacts to invite (only contacts both sides
accepted can be). Create asks the messenger; a refusal shows as one sentence in the dialog
and loses nothing typed or picked."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, SelectionList, Static

from chat.events import ContactView
from ui.host import NOT_RUNNING, ChatHost, Refused, attempt, host

HINT = "Space picks · Enter (in the name) or Create makes the group · Esc cancels"
MAX_LIST_ROWS = 12
DIALOG_ROWS = 22
"""Rows of the dialog besides the contact list's own (borders, fields, buttons, hint)."""
NO_CONTACTS = "No contacts to invite yet: add some with F2 (both of you must accept)."


def contact_prompt(contact: ContactView) -> str:
    """A contact as the pickers show it: name and the start of the chat key."""
    return f"{contact.display_name or '(no name)'}  ·  {contact.chat_key[:16]}…"


def invitable(contacts: list[ContactView]) -> list[ContactView]:
    """The contacts a group can invite (both accepted), by name."""
    mutual = [c for c in contacts if c.state == "mutual"]
    return sorted(mutual, key=lambda c: (c.display_name.casefold(), c.chat_key))


class NewGroupScreen(ModalScreen[str | None]):
    """Dismisses with the new group's id (its chat id), or None."""

    AUTO_FOCUS = "#group-name"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]

    def __init__(self) -> None:
        super().__init__()
        self.contacts: list[ContactView] = []

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="new-group-box", classes="dialog"):
            yield Static("New group", classes="dialog-title")
            yield Static(
                "End-to-end encrypted; each contact you pick gets an invitation.",
                classes="muted",
            )
            yield Input(placeholder="the group's name", max_length=200, id="group-name")
            yield Static("Invite", id="pick-title")
            yield SelectionList[str](id="group-members")
            yield Static("", id="new-group-error", classes="error", markup=False)
            with Horizontal(id="new-group-buttons"):
                yield Button("Create", variant="primary", id="create-group")
                yield Button("Cancel", id="cancel-group")
            yield Static(HINT, classes="muted")

    async def on_mount(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None:  # not started yet: the command says so if it is tried
            return
        found = await attempt(self.chinwag, messenger.contacts)
        if isinstance(found, Refused):
            self.show_error(found.reason)
            return
        self.show_contacts(found)

    def show_contacts(self, contacts: list[ContactView]) -> None:
        self.contacts = invitable(contacts)
        picker = self.query_one(SelectionList)
        picker.clear_options()
        picker.add_options([(contact_prompt(c), c.chat_key) for c in self.contacts])
        self._fit_list()
        if not self.contacts:
            self.show_error(NO_CONTACTS)

    def _fit_list(self) -> None:
        """As tall as its contacts (up to 12), shorter when the window is: the buttons and
        the hint below it stay in view."""
        room = self.size.height - DIALOG_ROWS
        rows = max(1, min(len(self.contacts), MAX_LIST_ROWS, room))
        self.query_one(SelectionList).styles.height = rows + 2  # its border

    def on_resize(self) -> None:
        self._fit_list()

    def show_error(self, text: str) -> None:
        self.query_one("#new-group-error", Static).update(text)

    @property
    def picked(self) -> list[str]:
        return list(self.query_one(SelectionList).selected)

    async def create(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None:
            self.show_error(NOT_RUNNING)
            return
        name = self.query_one("#group-name", Input).value
        created = await attempt(self.chinwag, messenger.create_group, name, self.picked)
        if isinstance(created, Refused):
            self.show_error(created.reason)
            return
        self.dismiss(created.id)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self.create()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "create-group":
            await self.create()
        else:
            self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
