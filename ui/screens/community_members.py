"""A community's member panel (F7 in one of its channels): its shard and the shard's
protection (a shard of its own, protected by a key; or the shared unprotected one), the
join policy, our role, and every member with their role, owner first. On the highlighted
member, the moderation steps our role allows (kick and ban after a confirmation that says
what rotates; grant or revoke admin, the owner only): an ordinary member is offered none."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from chat.events import CommunityMemberView, CommunityUpdated, CommunityView, Event
from ui.community_format import (
    CHANNEL_MARK,
    POLICY_WORDS,
    ROLE_ORDER,
    last_seen_words,
    protection_words,
)
from ui.host import NOT_RUNNING, ChatHost, Refused, attempt, host
from ui.screens.community_moderation import (
    ConfirmScreen,
    ban_words,
    kick_words,
    member_actions,
)

ACTION_WORDS = {
    "kick": "k kick",
    "ban": "b ban",
    "admin": "a make admin",
    "member": "r revoke admin",
}


class CommunityMembersScreen(ModalScreen[None]):
    AUTO_FOCUS = "#community-members-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("k", "kick", "Kick"),
        Binding("b", "ban", "Ban"),
        Binding("a", "admin", "Make admin"),
        Binding("r", "member", "Revoke admin"),
    ]

    def __init__(self, community: CommunityView, me: str) -> None:
        super().__init__()
        self.community = community
        self.me = me

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="community-members-box", classes="dialog"):
            yield Static("", id="community-members-title", classes="dialog-title", markup=False)
            yield Static("", id="community-shard", markup=False)
            yield Static("", id="community-about", classes="muted", markup=False)
            yield DataTable(id="community-members-table", cursor_type="row")
            yield Static("", id="community-members-error", classes="error", markup=False)
            yield Static("Esc closes", id="community-members-hint", classes="muted")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("role", "name", "chat key")
        self.show(self.community)

    def show(self, community: CommunityView) -> None:
        self.community = community
        channels = ", ".join(f"#{c.name}" for c in community.channels)
        self.query_one("#community-members-title", Static).update(
            f"{CHANNEL_MARK} {community.name}  ·  you are {community.my_role}  ·  {channels}"
        )
        policy = POLICY_WORDS.get(community.join_policy, community.join_policy)
        seen = last_seen_words(community.owner_last_seen, self.chinwag.clock())
        self.query_one("#community-shard", Static).update(
            f"{protection_words(community)}  ·  {policy}  ·  {seen}  ·  "
            f"description v{community.version}, key epoch {community.epoch}"
        )
        self.query_one("#community-about", Static).update(community.about)
        table = self.query_one(DataTable)
        chosen = self._selected_key()
        table.clear()
        ordered = sorted(
            community.members,
            key=lambda m: (ROLE_ORDER.get(m.role, 9), m.display_name.casefold(), m.chat_key),
        )
        for member in ordered:
            name = member.display_name or member.chat_key[:16]
            if member.chat_key == self.me:
                name += " (you)"
            table.add_row(member.role, name, member.chat_key, key=member.chat_key)
        if chosen is not None and chosen in table.rows:
            table.move_cursor(row=table.get_row_index(chosen))
        self._offer()

    def handle_event(self, event: Event) -> None:
        if isinstance(event, CommunityUpdated) and event.community.id == self.community.id:
            self.show(event.community)

    # ---- moderation ----------------------------------------------------------------------------
    def _selected_key(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        value = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(value) if value is not None else None

    @property
    def selected_member(self) -> CommunityMemberView | None:
        key = self._selected_key()
        return next((m for m in self.community.members if m.chat_key == key), None)

    def allowed_actions(self) -> list[str]:
        member = self.selected_member
        return [] if member is None else member_actions(self.community, self.me, member)

    def _offer(self) -> None:
        self.refresh_bindings()
        allowed = self.allowed_actions()
        words = [words for action, words in ACTION_WORDS.items() if action in allowed]
        self.query_one("#community-members-hint", Static).update(" · ".join([*words, "Esc closes"]))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action in self.allowed_actions() if action in ACTION_WORDS else True

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._offer()

    def show_error(self, text: str) -> None:
        self.query_one("#community-members-error", Static).update(text)

    def _member_name(self, member: CommunityMemberView) -> str:
        return member.display_name or member.chat_key[:16]

    def action_kick(self) -> None:
        member = self.selected_member
        if member is not None and "kick" in self.allowed_actions():
            question = kick_words(self.community, self._member_name(member))
            self.app.push_screen(
                ConfirmScreen("Remove a member", question, "Remove"),
                lambda yes: self._moderate("kick", member, yes),
            )

    def action_ban(self) -> None:
        member = self.selected_member
        if member is not None and "ban" in self.allowed_actions():
            question = ban_words(self.community, self._member_name(member))
            self.app.push_screen(
                ConfirmScreen("Ban a member", question, "Ban"),
                lambda yes: self._moderate("ban", member, yes),
            )

    async def action_admin(self) -> None:
        member = self.selected_member
        if member is not None and "admin" in self.allowed_actions():
            await self._moderate("admin", member, True)

    async def action_member(self) -> None:
        member = self.selected_member
        if member is not None and "member" in self.allowed_actions():
            await self._moderate("member", member, True)

    async def _moderate(
        self, step: str, member: CommunityMemberView, confirmed: bool | None
    ) -> None:
        messenger = self.chinwag.messenger
        if not confirmed:
            return
        if messenger is None:
            self.show_error(NOT_RUNNING)
            return
        if step == "kick":
            done = await attempt(
                self.chinwag, messenger.kick_community_member, self.community.id, member.chat_key
            )
        elif step == "ban":
            done = await attempt(
                self.chinwag, messenger.ban_community_member, self.community.id, member.chat_key
            )
        else:
            done = await attempt(
                self.chinwag,
                messenger.set_community_role,
                self.community.id,
                member.chat_key,
                step,
            )
        if isinstance(done, Refused):
            self.show_error(done.reason)
            return
        self.show_error("")
        self.show(done)

    def action_close(self) -> None:
        self.dismiss(None)
