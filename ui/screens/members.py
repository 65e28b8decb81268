"""A group's member panel: everyone its membership log names, with their state and a mark
for admins; add a contact, remove a member (or withdraw an invitation), rename, make an
admin, leave. Only the actions the log allows us are offered (the footer and the hint show
just those): an admin adds, removes, renames and makes admins; every member may leave. A
refusal from the core shows as one sentence."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from chat.events import Event, GroupMemberView, GroupUpdated, GroupView
from ui.format import group_title, member_name, member_state
from ui.host import ChatHost, Refused, attempt, host

ADMIN_MARK = "★"
MAX_TABLE_ROWS = 20
PANEL_ROWS = 13
"""Rows of the panel besides the member list (borders, title, role, error, hint, footer)."""
STATE_ORDER = {"joined": 0, "invited": 1, "expired": 2, "declined": 3, "left": 4, "removed": 5}
ACTION_WORDS = {
    "add": "a add a contact",
    "remove": "x remove",
    "rename": "n rename",
    "make_admin": "m make admin",
    "leave": "l leave",
}


class MembersScreen(ModalScreen[None]):
    AUTO_FOCUS = "#members-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("a", "add", "Add"),
        Binding("x,delete", "remove", "Remove"),
        Binding("n", "rename", "Rename"),
        Binding("m", "make_admin", "Make admin"),
        Binding("l", "leave", "Leave"),
    ]

    def __init__(self, group: GroupView, me: str) -> None:
        super().__init__()
        self.group = group
        self.me = me

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="members-box", classes="dialog"):
            yield Static("", id="members-title", classes="dialog-title", markup=False)
            yield Static("", id="members-role", classes="muted", markup=False)
            yield DataTable(id="members-table", cursor_type="row")
            yield Static("", id="members-error", classes="error", markup=False)
            yield Static("", id="members-hint", classes="muted", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(" ", "name", "state", "chat key")
        self.show(self.group)

    def on_resize(self) -> None:
        # The list scrolls rather than push the error and the hint out of a small window.
        room = self.size.height - PANEL_ROWS
        self.query_one(DataTable).styles.max_height = max(3, min(MAX_TABLE_ROWS, room))

    # ---- what the panel shows ----------------------------------------------------------------
    @property
    def admin(self) -> bool:
        return self.group.my_state == "joined" and self.me in self.group.admins

    @property
    def selected(self) -> GroupMemberView | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((m for m in self.group.members if m.chat_key == key), None)

    def show(self, group: GroupView) -> None:
        self.group = group
        self.query_one("#members-title", Static).update(group_title(group))
        role = "an admin" if self.admin else "a member"
        if group.my_state != "joined":
            role = "no longer a member"
        admins = ", ".join(
            member_name(m) if m.chat_key != self.me else "you"
            for m in group.members
            if m.chat_key in group.admins
        )
        self.query_one("#members-role", Static).update(
            f"You are {role}. {ADMIN_MARK} admins (may add, remove, rename): {admins or 'none'}"
        )
        table = self.query_one(DataTable)
        chosen = self.selected
        table.clear()
        ordered = sorted(
            group.members,
            key=lambda m: (STATE_ORDER.get(m.state, 9), not m.admin, member_name(m).casefold()),
        )
        for member in ordered:
            name = member_name(member) + (" (you)" if member.chat_key == self.me else "")
            table.add_row(
                ADMIN_MARK if member.admin else "",
                name,
                member_state(member),
                member.chat_key,
                key=member.chat_key,
            )
        if chosen is not None and chosen.chat_key in table.rows:
            table.move_cursor(row=table.get_row_index(chosen.chat_key))
        self._offer()

    def _offer(self) -> None:
        """Show only what we may do, in the footer and the hint."""
        self.refresh_bindings()
        allowed = [words for action, words in ACTION_WORDS.items() if self._allowed(action)]
        self.query_one("#members-hint", Static).update(" · ".join([*allowed, "Esc closes"]))

    def _allowed(self, action: str) -> bool:
        if action in ("add", "rename"):
            return self.admin
        if action == "leave":
            return self.group.my_state == "joined"
        member = self.selected
        if member is None or member.chat_key == self.me or not self.admin:
            return False
        if action == "remove":
            return member.state in ("joined", "invited")
        return member.state == "joined" and not member.admin  # make_admin

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self._allowed(action) if action in ACTION_WORDS else True

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._offer()

    def handle_event(self, event: Event) -> None:
        if isinstance(event, GroupUpdated) and event.group.id == self.group.id:
            self.show(event.group)

    def show_error(self, text: str) -> None:
        self.query_one("#members-error", Static).update(text)

    def _after(self, group: GroupView | None) -> None:
        if group is not None:
            self.show_error("")
            self.show(group)

    # ---- actions -----------------------------------------------------------------------------
    def action_add(self) -> None:
        from ui.screens.group_dialogs import PickContactScreen

        self.app.push_screen(PickContactScreen(self.group), self._after)

    def action_rename(self) -> None:
        from ui.screens.group_dialogs import RenameGroupScreen

        self.app.push_screen(RenameGroupScreen(self.group), self._after)

    def action_leave(self) -> None:
        from ui.screens.group_dialogs import LeaveGroupScreen

        self.app.push_screen(LeaveGroupScreen(self.group), self._after)

    async def action_remove(self) -> None:
        member = self.selected
        messenger = self.chinwag.messenger
        if member is None or messenger is None:
            return
        await self._run(messenger.remove_group_member, member.chat_key)

    async def action_make_admin(self) -> None:
        member = self.selected
        messenger = self.chinwag.messenger
        if member is None or messenger is None:
            return
        await self._run(messenger.grant_group_admin, member.chat_key)

    async def _run(
        self, command: Callable[[str, str], Awaitable[GroupView]], chat_key: str
    ) -> None:
        done = await attempt(self.chinwag, command, self.group.id, chat_key)
        if isinstance(done, Refused):
            self.show_error(done.reason)
        else:
            self._after(done)

    def action_close(self) -> None:
        self.dismiss(None)
