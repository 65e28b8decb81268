"""Create a profile: a display name, a passphrase typed twice with a strength hint, and the
plain warning that a lost passphrase cannot be recovered.

A weak passphrase (ui.format.passphrase_strength: under MIN_SCORE) is refused with a
sentence and a "use it anyway" box to tick; keys typed ahead of Tab or Enter land in the
next field, never the previous one (ui/widgets/typeahead.py)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Input, Static

from chat.session import validate_display_name
from ui.format import MIN_PASSPHRASE_SCORE, passphrase_strength
from ui.host import host
from ui.widgets.typeahead import FieldInput

WARNING = (
    "Your passphrase encrypts everything chinwag keeps on this computer. "
    "There is no way to recover a lost passphrase, and no one can reset it: "
    "write it down somewhere safe."
)
STRENGTH_BARS = ("", "▰▱▱▱", "▰▰▱▱", "▰▰▰▱", "▰▰▰▰")


class OnboardingScreen(Screen[None]):
    AUTO_FOCUS = "#display-name"

    def compose(self) -> ComposeResult:
        app = host(self)
        with Center(), VerticalScroll(id="onboarding-box", classes="dialog"):
            yield Static("Welcome to chinwag", classes="dialog-title")
            yield Static(f"Create the profile '{app.profile}'.", id="onboarding-profile")
            yield FieldInput(placeholder="your display name (what others see)", id="display-name")
            yield FieldInput(placeholder="passphrase", password=True, id="new-passphrase")
            yield Static("", id="strength")
            yield FieldInput(
                placeholder="the same passphrase again", password=True, last=True, id="repeat"
            )
            yield Static(WARNING, id="warning", classes="warning")
            yield Static("", id="onboarding-error", classes="error")
            yield Checkbox("use this weak passphrase anyway", id="use-weak")
            yield Button("Create profile", variant="primary", id="create")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#use-weak").display = False

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "new-passphrase":
            score, hint = passphrase_strength(event.value)
            self.query_one("#strength", Static).update(
                f"strength {STRENGTH_BARS[score]} {hint}" if event.value else ""
            )

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()  # only the last field submits: the others move on (FieldInput)
        await self._create()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self._create()

    def _problem(self) -> str | None:
        name = self.query_one("#display-name", Input).value
        first = self.query_one("#new-passphrase", Input).value
        second = self.query_one("#repeat", Input).value
        try:
            validate_display_name(name)
        except ValueError as exc:  # an IdentityError: a sentence
            return f"Display name: {exc}"
        if not first:
            return "Choose a passphrase."
        if first != second:
            return "The two passphrases differ; type the same one twice."
        score, _ = passphrase_strength(first)
        weak_ok = self.query_one("#use-weak", Checkbox)
        if score < MIN_PASSPHRASE_SCORE and not weak_ok.value:
            weak_ok.display = True
            return (
                "This passphrase is weak: anyone who gets this computer's files can guess it. "
                "Use a sentence of several words, or tick the box below to use it anyway."
            )
        return None

    async def _create(self) -> None:
        app = host(self)
        error = self.query_one("#onboarding-error", Static)
        problem = self._problem()
        if problem is not None:
            error.update(problem)
            return
        error.update("Creating your profile…")
        self.query_one("#create", Button).disabled = True
        name = validate_display_name(self.query_one("#display-name", Input).value)
        problem = await app.create_profile(name, self.query_one("#new-passphrase", Input).value)
        if problem is not None:
            self.query_one("#create", Button).disabled = False
            error.update(problem[:1].upper() + problem[1:])
        else:
            error.update("Starting the network…")
