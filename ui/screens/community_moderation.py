"""The community moderation dialogs: a confirmation that says what a step does (kick, ban,
leave) before it is taken, and a new channel's name. The words of each confirmation live
here so the member panel and the communities screen say the same thing; which steps a role
may take comes from the core's one table (chat/communities/roles.py, through chat.messenger)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from chat.events import CommunityMemberView, CommunityView
from chat.messenger import CommunityAction as Action
from chat.messenger import CommunityRole as Role
from chat.messenger import PermissionRefused
from chat.messenger import community_allows as allowed
from ui.host import NOT_RUNNING, ChatHost, Refused, attempt, host


def role_of(label: str) -> Role | None:
    """A view's role label as the core's role; None for 'none' (not a member)."""
    try:
        return Role.from_label(label)
    except PermissionRefused:
        return None


def member_actions(community: CommunityView, me: str, member: CommunityMemberView) -> list[str]:
    """The moderation steps our role allows on this member: kick, ban, admin (grant) or
    member (revoke admin). Nothing on ourselves; nothing for an ordinary member."""
    if member.chat_key == me:
        return []
    actor, subject = role_of(community.my_role), role_of(member.role)
    found = [
        name
        for name, action in (("kick", Action.KICK), ("ban", Action.BAN))
        if allowed(actor, action, subject)
    ]
    if allowed(actor, Action.SET_ROLE, subject):
        found.append("member" if subject is Role.ADMIN else "admin")
    return found


def may_edit_channels(community: CommunityView) -> bool:
    return allowed(role_of(community.my_role), Action.EDIT_CHANNELS)


def may_edit_description(community: CommunityView) -> bool:
    return allowed(role_of(community.my_role), Action.EDIT_DESCRIPTION)


def kick_words(community: CommunityView, name: str) -> str:
    return (
        f"Remove {name} from {community.name}? Every remaining member gets a new epoch key, "
        "so they cannot read what is written from now on. They may ask to join again."
    )


def ban_words(community: CommunityView, name: str) -> str:
    return (
        f"Ban {name} from {community.name}? Every remaining member gets a new epoch key and "
        "the shard a new protection key, so they can no longer read it nor publish on its "
        "shard; their requests to join are refused."
    )


def leave_words(community: CommunityView) -> str:
    return (
        f"Leave {community.name}? The owner and admins are told, its channels and keys go "
        "from this device, and you need a new invitation or request to come back."
    )


class ConfirmScreen(ModalScreen[bool]):
    """A question with what happens; y or the button confirms, n or Esc does not."""

    AUTO_FOCUS = "#confirm-no"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, title: str, question: str, yes: str) -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="dialog"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            yield Static(self.question, id="confirm-question", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, variant="error", id="confirm-yes")
                yield Button("Cancel", id="confirm-no")
            yield Static("y confirms · n or Esc cancels", classes="muted")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class AddChannelScreen(ModalScreen[CommunityView | None]):
    """A new channel's name; Enter adds it (the core signs and publishes the new
    description). Dismisses with the community as it is now, or None."""

    AUTO_FOCUS = "#channel-name"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]

    def __init__(self, community: CommunityView) -> None:
        super().__init__()
        self.community = community

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="add-channel-box", classes="dialog"):
            yield Static(
                f"New channel in {self.community.name}", classes="dialog-title", markup=False
            )
            yield Input(placeholder="the channel's name", max_length=200, id="channel-name")
            yield Static("", id="add-channel-error", classes="error", markup=False)
            yield Static("Enter adds it · Esc cancels", classes="muted")

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        error = self.query_one("#add-channel-error", Static)
        messenger = self.chinwag.messenger
        if messenger is None:
            error.update(NOT_RUNNING)
            return
        added = await attempt(
            self.chinwag, messenger.add_community_channel, self.community.id, event.value
        )
        if isinstance(added, Refused):
            error.update(added.reason)
            return
        self.dismiss(added)

    def action_close(self) -> None:
        self.dismiss(None)
