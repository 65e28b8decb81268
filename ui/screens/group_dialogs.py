"""The small dialogs of the member panel: pick a contact to add, rename the group, confirm
leaving it. Each runs its command itself and shows a refusal as one sentence, so nothing
typed is lost."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from chat.events import ContactView, GroupView
from ui.host import NOT_RUNNING, ChatHost, Refused, attempt, host
from ui.screens.new_group import contact_prompt, invitable


class PickContactScreen(ModalScreen[GroupView | None]):
    """Invite one contact to the group; dismisses with the group's new view, or None."""

    AUTO_FOCUS = "#pick-contact"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]

    def __init__(self, group: GroupView) -> None:
        super().__init__()
        self.group = group

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="pick-box", classes="dialog"):
            yield Static(f"Add to {self.group.name}", classes="dialog-title", markup=False)
            yield OptionList(id="pick-contact")
            yield Static("", id="pick-error", classes="error", markup=False)
            yield Static("Enter invites the contact · Esc cancels", classes="muted")

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
        inside = {m.chat_key for m in self.group.members if m.state in ("joined", "invited")}
        candidates = [c for c in invitable(contacts) if c.chat_key not in inside]
        picker = self.query_one(OptionList)
        picker.clear_options()
        picker.add_options([Option(contact_prompt(c), id=c.chat_key) for c in candidates])
        if candidates:
            picker.highlighted = 0  # Enter acts at once
        else:
            self.show_error("Every contact is in the group or invited already.")

    def show_error(self, text: str) -> None:
        self.query_one("#pick-error", Static).update(text)

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        messenger = self.chinwag.messenger
        if messenger is None or event.option.id is None:
            return
        added = await attempt(
            self.chinwag, messenger.add_group_member, self.group.id, event.option.id
        )
        if isinstance(added, Refused):
            self.show_error(added.reason)
            return
        self.dismiss(added)

    def action_close(self) -> None:
        self.dismiss(None)


class RenameGroupScreen(ModalScreen[GroupView | None]):
    """Dismisses with the group's new view once renamed, or None."""

    AUTO_FOCUS = "#new-group-name"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]

    def __init__(self, group: GroupView) -> None:
        super().__init__()
        self.group = group

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="rename-box", classes="dialog"):
            yield Static("Rename the group", classes="dialog-title")
            yield Static("Every member sees the new name, and a line says who renamed it.")
            yield Input(self.group.name, max_length=200, id="new-group-name")
            yield Static("", id="rename-error", classes="error", markup=False)
            yield Static("Enter renames · Esc cancels", classes="muted")

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        messenger = self.chinwag.messenger
        error = self.query_one("#rename-error", Static)
        if messenger is None:
            error.update(NOT_RUNNING)
            return
        renamed = await attempt(self.chinwag, messenger.rename_group, self.group.id, event.value)
        if isinstance(renamed, Refused):
            error.update(renamed.reason)
            return
        self.dismiss(renamed)

    def action_close(self) -> None:
        self.dismiss(None)


class LeaveGroupScreen(ModalScreen[GroupView | None]):
    """y leaves the group (dismisses with its view), n or Esc stays (None)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "leave", "Leave"),
        Binding("n,escape", "close", "Stay"),
    ]

    def __init__(self, group: GroupView) -> None:
        super().__init__()
        self.group = group

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="leave-box", classes="dialog"):
            yield Static(f"Leave {self.group.name}?", classes="dialog-title", markup=False)
            yield Static(
                "The members are told, and you read nothing sent after; its messages so far "
                "stay here. Only an admin can add you again."
            )
            yield Static("", id="leave-error", classes="error", markup=False)
            yield Static("y leaves · n or Esc stays", classes="muted")

    async def action_leave(self) -> None:
        messenger = self.chinwag.messenger
        error = self.query_one("#leave-error", Static)
        if messenger is None:
            error.update(NOT_RUNNING)
            return
        left = await attempt(self.chinwag, messenger.leave_group, self.group.id)
        if isinstance(left, Refused):
            error.update(left.reason)
            return
        self.dismiss(left)

    def action_close(self) -> None:
        self.dismiss(None)
