"""A community's member panel (F7 in one of its channels): its shard and the shard's
protection (a shard of its own, protected by a key; or the shared unprotected one), the
join policy, our role, and every member with their role, owner first."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from chat.events import CommunityUpdated, CommunityView, Event
from ui.community_format import (
    CHANNEL_MARK,
    POLICY_WORDS,
    ROLE_ORDER,
    last_seen_words,
    protection_words,
)
from ui.host import ChatHost, host


class CommunityMembersScreen(ModalScreen[None]):
    AUTO_FOCUS = "#community-members-table"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

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
            yield Static("Esc closes", classes="muted")

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

    def handle_event(self, event: Event) -> None:
        if isinstance(event, CommunityUpdated) and event.community.id == self.community.id:
            self.show(event.community)

    def action_close(self) -> None:
        self.dismiss(None)
