"""Editing a community (owner and admins, from F9): its name and about text, and removing a
channel after a confirmation that says what happens to its history. Each step is the core's
(a new signed description every member adopts); a refusal shows as one sentence and loses
nothing typed. Both dismiss with the community as it is now, or None."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from chat.events import CommunityChannelView, CommunityView
from ui.host import NOT_RUNNING, ChatHost, Refused, attempt, host
from ui.screens.community_moderation import ConfirmScreen


def remove_channel_words(community: CommunityView, channel: CommunityChannelView) -> str:
    return (
        f"Remove #{channel.name} from {community.name}? Nobody can write in it any more and "
        "it leaves every member's chat list. Its messages are not deleted: they stay, "
        "hidden, on the devices that have them (and on store nodes until their retention "
        "ends). It cannot be brought back; a new channel of that name starts empty."
    )


class EditCommunityScreen(ModalScreen[CommunityView | None]):
    """The name and the about text, filled in; Enter in either saves what changed."""

    AUTO_FOCUS = "#edit-community-name"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]

    def __init__(self, community: CommunityView) -> None:
        super().__init__()
        self.community = community

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-community-box", classes="dialog"):
            yield Static(f"Edit {self.community.name}", classes="dialog-title", markup=False)
            yield Static("Every member sees the change with the next description.", classes="muted")
            yield Input(
                self.community.name,
                placeholder="the community's name",
                max_length=200,
                id="edit-community-name",
            )
            yield Input(
                self.community.about,
                placeholder="about it (optional)",
                max_length=2000,
                id="edit-community-about",
            )
            yield Static("", id="edit-community-error", classes="error", markup=False)
            yield Static("Enter saves · Esc cancels", classes="muted")

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        error = self.query_one("#edit-community-error", Static)
        messenger = self.chinwag.messenger
        if messenger is None:
            error.update(NOT_RUNNING)
            return
        name = self.query_one("#edit-community-name", Input).value
        about = self.query_one("#edit-community-about", Input).value
        edited = await attempt(
            self.chinwag,
            messenger.edit_community,
            self.community.id,
            name if name != self.community.name else None,
            about if about != self.community.about else None,
        )
        if isinstance(edited, Refused):
            error.update(edited.reason)
            return
        self.dismiss(edited)

    def action_close(self) -> None:
        self.dismiss(None)


class RemoveChannelScreen(ModalScreen[CommunityView | None]):
    """The community's channels; Enter on one asks first (what happens to its history),
    then removes it."""

    AUTO_FOCUS = "#remove-channel-list"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]

    def __init__(self, community: CommunityView) -> None:
        super().__init__()
        self.community = community

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="remove-channel-box", classes="dialog"):
            yield Static(
                f"Remove a channel of {self.community.name}",
                classes="dialog-title",
                markup=False,
            )
            yield OptionList(
                *(Option(f"#{c.name}", id=c.id) for c in self.community.channels),
                id="remove-channel-list",
            )
            yield Static("", id="remove-channel-error", classes="error", markup=False)
            yield Static(
                "Enter removes the channel (after a question) · Esc cancels", classes="muted"
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        channel = next((c for c in self.community.channels if c.id == event.option.id), None)
        if channel is None:
            return
        self.app.push_screen(
            ConfirmScreen(
                "Remove a channel", remove_channel_words(self.community, channel), "Remove"
            ),
            lambda yes: self._remove(channel, yes),
        )

    async def _remove(self, channel: CommunityChannelView, confirmed: bool | None) -> None:
        if not confirmed:
            return
        error = self.query_one("#remove-channel-error", Static)
        messenger = self.chinwag.messenger
        if messenger is None:
            error.update(NOT_RUNNING)
            return
        removed = await attempt(
            self.chinwag, messenger.remove_community_channel, self.community.id, channel.id
        )
        if isinstance(removed, Refused):
            error.update(removed.reason)
            return
        self.dismiss(removed)

    def action_close(self) -> None:
        self.dismiss(None)
