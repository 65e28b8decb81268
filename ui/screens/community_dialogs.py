"""The community dialogs: make a new community (name, about, join policy, and whether it goes
on the network's shared unprotected shard instead of one of its own), and join one by
its link. Joining shows every step of the fetch (fetching → found / not found / timed out,
with the reason and Ctrl+R to try again) before the request, with its message, is sent. A
refusal from the core shows as one sentence in the dialog and loses nothing typed. And a
community's link with its QR code, to give to people."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Checkbox, Input, RadioButton, RadioSet, Static

from chat.events import CommunityFetchView, CommunityRequestView
from ui.community_format import fetch_words, request_words
from ui.host import NOT_RUNNING, ChatHost, Refused, attempt, host

FETCH_POLL = 0.5
"""Seconds between looks at a running fetch (its states come from the core's view)."""


class NewCommunityScreen(ModalScreen[str | None]):
    """Dismisses with the new community's first channel id (a chat id), or None."""

    AUTO_FOCUS = "#community-name"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="new-community-box", classes="dialog"):
            yield Static("New community", classes="dialog-title")
            yield Static(
                "It gets a shard of its own, protected by a key only members hold, and a "
                "#general channel.",
                classes="muted",
            )
            yield Input(placeholder="the community's name", max_length=200, id="community-name")
            yield Input(placeholder="about it (optional)", max_length=2000, id="community-about")
            with RadioSet(id="community-policy"):
                yield RadioButton("Join by request: an owner or admin accepts", value=True)
                yield RadioButton("Open: anyone with the link joins")
            yield Checkbox(
                "Put it on the shared shard (for tests, or many communities at once)",
                id="community-shared",
            )
            yield Static(
                "No protection key: anyone can publish on it; bandwidth shared with others.",
                id="community-shared-cost",
                classes="muted",
            )
            yield Static("", id="new-community-error", classes="error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create", variant="primary", id="create-community")
                yield Button("Cancel", id="cancel-community")
            yield Static("Enter or Create makes it · Esc cancels", classes="muted")

    @property
    def join_policy(self) -> str:
        return "open" if self.query_one(RadioSet).pressed_index == 1 else "approval"

    def show_error(self, text: str) -> None:
        self.query_one("#new-community-error", Static).update(text)

    async def create(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None:
            self.show_error(NOT_RUNNING)
            return
        name = self.query_one("#community-name", Input).value
        about = self.query_one("#community-about", Input).value
        shared = self.query_one("#community-shared", Checkbox).value
        created = await attempt(
            self.chinwag,
            messenger.create_community,
            name,
            about,
            self.join_policy,
            None,
            None,
            shared,
        )
        if isinstance(created, Refused):
            self.show_error(created.reason)
            return
        self.dismiss(created.channels[0].id if created.channels else None)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self.create()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "create-community":
            await self.create()
        else:
            self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class JoinCommunityScreen(ModalScreen[CommunityRequestView | None]):
    """Paste a link, Enter fetches; once found, a message and Send request. Dismisses with
    the request sent, or None."""

    AUTO_FOCUS = "#community-link"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Cancel"),
        Binding("ctrl+r", "retry", "Try again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.fetch: CommunityFetchView | None = None
        self._poll: Timer | None = None

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="join-community-box", classes="dialog"):
            yield Static("Join a community", classes="dialog-title")
            yield Input(placeholder="paste its link (chinwag-community:…)", id="community-link")
            yield Static("", id="fetch-state", markup=False)
            yield Input(
                placeholder="a message for the owner and admins (optional)",
                max_length=2000,
                id="join-message",
            )
            yield Static("", id="join-error", classes="error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Send request", variant="primary", id="send-join", disabled=True)
                yield Button("Cancel", id="cancel-join")
            yield Static(
                "Enter (in the link) looks it up · Ctrl+R tries again · Esc cancels",
                classes="muted",
            )

    def on_mount(self) -> None:
        self.query_one("#join-message").display = False

    def show_error(self, text: str) -> None:
        self.query_one("#join-error", Static).update(text)

    def show_fetch(self, fetch: CommunityFetchView) -> None:
        self.fetch = fetch
        state = self.query_one("#fetch-state", Static)
        state.update(fetch_words(fetch, self.chinwag.clock()))
        state.set_class(fetch.state in ("not_found", "timed_out"), "error")
        found = fetch.state == "found"
        self.query_one("#join-message").display = found
        self.query_one("#send-join", Button).disabled = not found
        if fetch.state != "fetching" and self._poll is not None:
            self._poll.stop()
            self._poll = None
        if found:
            self.query_one("#join-message", Input).focus()

    async def look_up(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None:
            self.show_error(NOT_RUNNING)
            return
        self.show_error("")
        link = self.query_one("#community-link", Input).value.strip()
        fetch = await attempt(self.chinwag, messenger.fetch_community, link)
        if isinstance(fetch, Refused):
            self.show_error(fetch.reason)
            return
        self.show_fetch(fetch)
        if fetch.state == "fetching" and self._poll is None:
            self._poll = self.set_interval(FETCH_POLL, self._follow_fetch)

    async def _follow_fetch(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None or self.fetch is None:
            return
        fetch = await attempt(self.chinwag, messenger.community_fetch, self.fetch.community_id)
        if not isinstance(fetch, Refused):
            self.show_fetch(fetch)

    async def send(self) -> None:
        messenger = self.chinwag.messenger
        if messenger is None:
            self.show_error(NOT_RUNNING)
            return
        link = self.query_one("#community-link", Input).value.strip()
        message = self.query_one("#join-message", Input).value
        sent = await attempt(self.chinwag, messenger.join_community, link, message)
        if isinstance(sent, Refused):
            self.show_error(sent.reason)
            return
        self.notify(f"Join request {request_words(sent, self.chinwag.clock())}.")
        self.dismiss(sent)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "community-link":
            await self.look_up()
        elif self.fetch is not None and self.fetch.state == "found":
            await self.send()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "send-join":
            await self.send()
        else:
            self.dismiss(None)

    async def action_retry(self) -> None:
        await self.look_up()

    def action_close(self) -> None:
        self.dismiss(None)


class CommunityLinkScreen(ModalScreen[None]):
    """A community's link (and its QR code, scrolled if the window is small): what its
    members give people so they can ask to join. c copies the link."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close"),
        Binding("c", "copy", "Copy link"),
    ]

    def __init__(self, name: str, link: str, qr: str) -> None:
        super().__init__()
        self.community_name = name
        self.link = link
        self.qr = qr

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="community-link-box", classes="dialog"):
            yield Static(f"Link to {self.community_name}", classes="dialog-title", markup=False)
            yield Static("Anyone with it can ask to join (c copies it):")
            yield Static(self.link, id="community-link-value", markup=False)
            yield Static(self.qr, id="community-qr", markup=False)
            yield Static("c copies · Esc closes", classes="muted")

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.link)
        self.notify("Community link copied.")

    def action_close(self) -> None:
        self.dismiss(None)
