"""The communities screen (F9): the communities we are in, with our role, their shard and
its protection; and the join requests: those waiting for us as an owner or admin (accept or
decline) and our own (their state, "owner last seen", when they expire; cancel). New and
join open their dialogs, l shows a community's link and QR code, Enter on a community opens
its first channel; h adds a channel, e edits the name and about text, r removes a channel
(after a confirmation; owner or admin), x leaves (after a confirmation; the owner cannot).
Only the actions the highlighted row allows are offered (footer and hint). Dismisses with
a chat id to open, or None."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from chat.events import (
    CommunityRequestUpdated,
    CommunityRequestView,
    CommunityUpdated,
    CommunityView,
    Event,
)
from ui.community_format import protection_words, request_words
from ui.host import NOT_RUNNING, ChatHost, Refused, attempt, host
from ui.screens.community_moderation import (
    AddChannelScreen,
    ConfirmScreen,
    leave_words,
    may_edit_channels,
    may_edit_description,
)

ACTION_WORDS = {
    "new": "n new",
    "join": "j join by link",
    "open": "Enter opens",
    "link": "l link",
    "add_channel": "h add a channel",
    "edit": "e edit",
    "remove_channel": "r remove a channel",
    "leave": "x leave",
    "accept": "a accept",
    "decline": "d decline",
    "cancel_request": "c cancel my request",
}
REQUEST_ORDER = {"pending": 0, "accepted": 1, "declined": 2, "expired": 3, "cancelled": 4}


class CommunitiesScreen(ModalScreen[str | None]):
    AUTO_FOCUS = "#communities-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("n", "new", "New"),
        Binding("j", "join", "Join"),
        Binding("l", "link", "Link"),
        Binding("h", "add_channel", "Add channel"),
        Binding("e", "edit", "Edit"),
        Binding("r", "remove_channel", "Remove channel"),
        Binding("x", "leave", "Leave"),
        Binding("a", "accept", "Accept"),
        Binding("d", "decline", "Decline"),
        Binding("c", "cancel_request", "Cancel request"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.communities: dict[str, CommunityView] = {}
        self.requests: dict[str, CommunityRequestView] = {}
        self.fetched_names: dict[str, str] = {}
        """Names of communities we asked to join but are not in yet (from their fetch)."""

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="communities-box", classes="dialog"):
            yield Static("Communities", classes="dialog-title")
            yield DataTable(id="communities-table", cursor_type="row")
            yield Static("Join requests", classes="section-title")
            yield DataTable(id="requests-table", cursor_type="row")
            yield Static("", id="communities-error", classes="error", markup=False)
            yield Static("", id="communities-hint", classes="muted", markup=False)
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#communities-table", DataTable).add_columns(
            "name", "my role", "members", "policy", "shard"
        )
        self.query_one("#requests-table", DataTable).add_columns(
            "community", "who", "direction", "message", "state"
        )
        await self.reload()

    async def reload(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None:
            self.show_error(NOT_RUNNING)
            return
        found = await attempt(self.chinwag, messenger.communities)
        requests = await attempt(self.chinwag, messenger.community_requests)
        for result in (found, requests):
            if isinstance(result, Refused):
                self.show_error(result.reason)
                return
        assert not isinstance(found, Refused) and not isinstance(requests, Refused)
        self.communities = {c.id: c for c in found if c.my_role != "none"}
        self.requests = {r.id: r for r in requests}
        self.show()
        await self.learn_names()

    async def learn_names(self) -> None:
        """A request to a community we are not in names it by its fetched description."""
        messenger = self.chinwag.messenger
        if messenger is None:
            return
        unknown = {r.community_id for r in self.requests.values()} - set(self.communities)
        for community_id in unknown - set(self.fetched_names):
            fetch = await attempt(self.chinwag, messenger.community_fetch, community_id)
            if not isinstance(fetch, Refused) and fetch.community is not None:
                self.fetched_names[community_id] = fetch.community.name
        self.show()

    # ---- what the screen shows ---------------------------------------------------------------
    def _name_of(self, community_id: str) -> str:
        community = self.communities.get(community_id)
        if community is not None:
            return community.name
        return self.fetched_names.get(community_id, community_id[:12])

    def show(self) -> None:
        table = self.query_one("#communities-table", DataTable)
        chosen = self._selected_key(table)
        table.clear()
        for community in sorted(self.communities.values(), key=lambda c: c.name.casefold()):
            table.add_row(
                community.name,
                community.my_role,
                str(len(community.members)),
                community.join_policy,
                protection_words(community),
                key=community.id,
            )
        self._keep_cursor(table, chosen)
        requests = self.query_one("#requests-table", DataTable)
        chosen = self._selected_key(requests)
        requests.clear()
        now = self.chinwag.clock()
        ordered = sorted(
            self.requests.values(),
            key=lambda r: (REQUEST_ORDER.get(r.state, 9), r.direction, r.display_name),
        )
        for request in ordered:
            requests.add_row(
                self._name_of(request.community_id),
                "you" if request.direction == "sent" else request.display_name or "?",
                "asked by you" if request.direction == "sent" else "asks to join",
                _short(request.message),
                request_words(request, now),
                key=request.id,
            )
        self._keep_cursor(requests, chosen)
        self._offer()

    @staticmethod
    def _selected_key(table: DataTable[object]) -> str | None:
        if table.row_count == 0:
            return None
        value = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(value) if value is not None else None

    @staticmethod
    def _keep_cursor(table: DataTable[object], key: str | None) -> None:
        if key is not None and key in table.rows:
            table.move_cursor(row=table.get_row_index(key))

    @property
    def selected_request(self) -> CommunityRequestView | None:
        key = self._selected_key(self.query_one("#requests-table", DataTable))
        return self.requests.get(key) if key is not None else None

    @property
    def selected_community(self) -> CommunityView | None:
        key = self._selected_key(self.query_one("#communities-table", DataTable))
        return self.communities.get(key) if key is not None else None

    def _in_requests(self) -> bool:
        return self.focused is self.query_one("#requests-table")

    def _allowed(self, action: str) -> bool:
        if action in ("new", "join"):
            return True
        community = None if self._in_requests() else self.selected_community
        if action in ("open", "link"):
            return community is not None
        if action == "add_channel":
            return community is not None and may_edit_channels(community)
        if action == "remove_channel":
            return (
                community is not None and may_edit_channels(community) and bool(community.channels)
            )
        if action == "edit":
            return community is not None and may_edit_description(community)
        if action == "leave":
            return community is not None and community.my_role in ("admin", "member")
        request = self.selected_request if self._in_requests() else None
        if request is None or request.state != "pending":
            return False
        if action == "cancel_request":
            return request.direction == "sent"
        return request.direction == "received"  # accept, decline

    def _offer(self) -> None:
        self.refresh_bindings()
        allowed = [words for action, words in ACTION_WORDS.items() if self._allowed(action)]
        hint = " · ".join([*allowed, "Tab: communities / requests", "Esc closes"])
        self.query_one("#communities-hint", Static).update(hint)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self._allowed(action) if action in ACTION_WORDS else True

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._offer()

    def on_descendant_focus(self) -> None:
        self._offer()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        community = self.selected_community
        if event.data_table.id == "communities-table" and community is not None:
            self.dismiss(community.channels[0].id if community.channels else None)

    def handle_event(self, event: Event) -> None:
        if isinstance(event, CommunityUpdated):
            if event.community.my_role == "none":  # we left, or were removed
                self.communities.pop(event.community.id, None)
            else:
                self.communities[event.community.id] = event.community
            self.show()
        elif isinstance(event, CommunityRequestUpdated):
            self.requests[event.request.id] = event.request
            self.show()

    def show_error(self, text: str) -> None:
        self.query_one("#communities-error", Static).update(text)

    # ---- actions -----------------------------------------------------------------------------
    def action_new(self) -> None:
        from ui.screens.community_dialogs import NewCommunityScreen

        self.app.push_screen(NewCommunityScreen(), self._after_new)

    def _after_new(self, chat_id: str | None) -> None:
        if chat_id is not None:
            self.dismiss(chat_id)

    def action_join(self) -> None:
        from ui.screens.community_dialogs import JoinCommunityScreen

        self.app.push_screen(JoinCommunityScreen(), self._after_join)

    async def _after_join(self, request: CommunityRequestView | None) -> None:
        if request is not None:
            self.requests[request.id] = request
            await self.learn_names()
            requests = self.query_one("#requests-table", DataTable)
            requests.focus()
            self._keep_cursor(requests, request.id)

    async def action_link(self) -> None:
        from ui.screens.community_dialogs import CommunityLinkScreen

        community = self.selected_community
        messenger = self.chinwag.messenger
        if community is None or messenger is None:
            return
        found = await attempt(self.chinwag, messenger.community_link, community.id)
        if isinstance(found, Refused):
            self.show_error(found.reason)
            return
        link, qr = found
        self.app.push_screen(CommunityLinkScreen(community.name, link, qr))

    def action_add_channel(self) -> None:
        community = self.selected_community
        if community is not None and self._allowed("add_channel"):
            self.app.push_screen(AddChannelScreen(community), self._after_change)

    def action_edit(self) -> None:
        from ui.screens.community_edit import EditCommunityScreen

        community = self.selected_community
        if community is not None and self._allowed("edit"):
            self.app.push_screen(EditCommunityScreen(community), self._after_change)

    def action_remove_channel(self) -> None:
        from ui.screens.community_edit import RemoveChannelScreen

        community = self.selected_community
        if community is not None and self._allowed("remove_channel"):
            self.app.push_screen(RemoveChannelScreen(community), self._after_change)

    def _after_change(self, community: CommunityView | None) -> None:
        if community is not None:
            self.show_error("")
            self.communities[community.id] = community
            self.show()

    def action_leave(self) -> None:
        community = self.selected_community
        if community is not None and self._allowed("leave"):
            self.app.push_screen(
                ConfirmScreen("Leave a community", leave_words(community), "Leave"),
                lambda yes: self._leave(community, yes),
            )

    async def _leave(self, community: CommunityView, confirmed: bool | None) -> None:
        messenger = self.chinwag.messenger
        if not confirmed or messenger is None:
            return
        left = await attempt(self.chinwag, messenger.leave_community, community.id)
        if isinstance(left, Refused):
            self.show_error(left.reason)
            return
        self.show_error("")
        self.communities.pop(community.id, None)
        self.show()

    async def action_accept(self) -> None:
        await self._answer("accept")

    async def action_decline(self) -> None:
        await self._answer("decline")

    async def action_cancel_request(self) -> None:
        await self._answer("cancel")

    async def _answer(self, how: str) -> None:
        request = self.selected_request
        messenger = self.chinwag.messenger
        if request is None or messenger is None:
            return
        command = {
            "accept": messenger.accept_community_request,
            "decline": messenger.decline_community_request,
            "cancel": messenger.cancel_community_request,
        }[how]
        done = await attempt(self.chinwag, command, request.id)
        if isinstance(done, Refused):
            self.show_error(done.reason)
            return
        self.show_error("")
        self.requests[done.id] = done
        self.show()

    def action_close(self) -> None:
        self.dismiss(None)


def _short(text: str, limit: int = 30) -> str:
    """A request's message on one line, cut to fit beside its state."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
