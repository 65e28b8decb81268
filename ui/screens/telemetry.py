"""Opt-in telemetry on the chat screen (docs/telemetry.md): the first-run question, and "What
we send" (F10 or the palette), which shows the level, what waits and what left, the next batch
byte for byte and the dictionary of every field, with pause, resume, a level change and
opting out. The choices are the core's (chat.session.ProfileTelemetry): recorded in the
profile, acted on at once."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, RadioButton, RadioSet, Static

from ui.host import ChatHost, host

REFRESH = 2.0
"""Seconds between readings of the queue (the client flushes every second)."""

LEVELS_TEXT = (
    "health: when the app runs, how long it is online, peers, bandwidth per protocol, "
    "errors (counters only).\n"
    "reliability: also one event per message sent, confirmed and received, and per gap "
    "found, with blinded references so the collector can match a sender with its "
    "receivers.\n"
    "Never: message text, chat keys, content topics, peer ids, names, contact links, "
    "IP addresses."
)


class ConsentScreen(ModalScreen[str | None]):
    """Asks once: No / Yes (at the chosen level) / Show what would be sent. Dismisses with
    the level recorded (`off` for No), or None if the core could not record it."""

    AUTO_FOCUS = "#consent-no"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer('off')", "No"),
        Binding("n", "answer('off')", "No"),
        Binding("y", "answer('yes')", "Yes"),
        Binding("s", "show", "Show what would be sent"),
    ]

    def __init__(self, destination: str) -> None:
        super().__init__()
        self.destination = destination

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="consent-box", classes="dialog"):
            yield Static("Help make chinwag reliable?", classes="dialog-title")
            yield Static(
                "chinwag can report how reliably messages arrive, to "
                f"{self.destination}. It is off until you say yes; you can look at every "
                "byte, pause or turn it off any time (F10, What we send).",
                markup=False,
            )
            yield Static(LEVELS_TEXT, classes="muted", markup=False)
            with RadioSet(id="consent-level"):
                yield RadioButton("health: counters only", id="level-health", value=True)
                yield RadioButton("reliability: also per message", id="level-reliability")
            with Horizontal(classes="buttons"):
                yield Button("No", id="consent-no")
                yield Button("Yes", id="consent-yes", variant="primary")
                yield Button("Show what would be sent", id="consent-show")
            yield Static("", id="consent-dictionary", classes="muted", markup=False)
            yield Static("y yes · n or Esc no · s show what would be sent", classes="muted")

    def chosen_level(self) -> str:
        pressed = self.query_one(RadioSet).pressed_button
        return (
            "reliability" if pressed is not None and pressed.id == "level-reliability" else "health"
        )

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "consent-show":
            self.action_show()
        else:
            await self.action_answer("yes" if event.button.id == "consent-yes" else "off")

    def action_show(self) -> None:
        telemetry = self.chinwag.telemetry
        if telemetry is not None:
            self.query_one("#consent-dictionary", Static).update(
                "Every field that can be sent, what it means, why, and how long it is kept:\n\n"
                + telemetry.dictionary_text()
            )

    async def action_answer(self, answer: str) -> None:
        telemetry = self.chinwag.telemetry
        if telemetry is None:
            self.dismiss(None)
            return
        level = self.chosen_level() if answer == "yes" else "off"
        chosen = await self.chinwag.call(telemetry.choose, level)
        self.dismiss(chosen)
        if chosen is None:
            return
        if level == "off":
            self.app.notify("Telemetry stays off. F10 shows what it would send.", title="Telemetry")
        else:
            self.app.notify(
                f"Thank you: telemetry is on ({level}). F10 shows what is sent; pause or turn it "
                "off there.",
                title="Telemetry",
            )


class TelemetryScreen(Screen[None]):
    """What we send: read from the profile every few seconds; p pauses or resumes, h and r
    choose the level, o twice opts out (the queue is deleted, the collector asked to
    delete what it holds)."""

    AUTO_FOCUS = "#telemetry-pane"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back"),
        Binding("p", "pause", "Pause / resume"),
        Binding("h", "level('health')", "Health"),
        Binding("r", "level('reliability')", "Reliability"),
        Binding("o", "off", "Turn off"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.confirming_off = False

    @property
    def chinwag(self) -> ChatHost:
        return host(self)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="telemetry-pane"):
            yield Static("What we send", classes="pane-title")
            yield Static("", id="telemetry-status", markup=False)
            yield Static("", id="telemetry-notice", classes="error", markup=False)
            yield Static("Sent", classes="pane-title")
            yield Static("", id="telemetry-sent", markup=False)
            yield Static(
                "Next batch, exactly as it would leave (before gzip)", classes="pane-title"
            )
            yield Static("", id="telemetry-next", markup=False)
            yield Static("Every field that can be sent", classes="pane-title")
            yield Static("", id="telemetry-dictionary", classes="muted", markup=False)
        yield Footer()

    async def on_mount(self) -> None:
        telemetry = self.chinwag.telemetry
        if telemetry is not None:
            self.query_one("#telemetry-dictionary", Static).update(telemetry.dictionary_text())
        self.set_interval(REFRESH, self.reload)
        await self.reload()

    async def reload(self) -> None:
        telemetry = self.chinwag.telemetry
        if telemetry is None:
            return
        report = await self.chinwag.call(telemetry.report)
        if report is None:
            return
        self.paused = report.paused
        state = "sending" if report.running and not report.paused else "not sending"
        if report.forced_off:
            state = "off: CHINWAG_TELEMETRY=off"
        self.query_one("#telemetry-status", Static).update(
            f"{state} · to {report.destination}\n{report.status_text}"
        )
        self.query_one("#telemetry-sent", Static).update(report.sent_text)
        self.query_one("#telemetry-next", Static).update(report.next_batch or "nothing waits")

    def notice(self, text: str) -> None:
        self.query_one("#telemetry-notice", Static).update(text)

    async def action_pause(self) -> None:
        telemetry = self.chinwag.telemetry
        if telemetry is None:
            return
        await self.chinwag.call(telemetry.set_paused, not self.paused)
        self.notice("" if self.paused else "Paused: nothing is recorded or sent until p.")
        await self.reload()

    async def action_level(self, level: str) -> None:
        telemetry = self.chinwag.telemetry
        if telemetry is None:
            return
        if telemetry.configured.forced_off:
            self.notice("CHINWAG_TELEMETRY=off is set: telemetry stays off.")
            return
        if telemetry.destination == "-":
            self.notice("No collector is configured ([telemetry] collector in the config file).")
            return
        await self.chinwag.call(telemetry.choose, level)
        self.notice(f"Telemetry is on: {level}.")
        await self.reload()

    async def action_off(self) -> None:
        telemetry = self.chinwag.telemetry
        if telemetry is None:
            return
        if not self.confirming_off:
            self.confirming_off = True
            self.notice(
                "Press o again to turn telemetry off: the local queue is deleted and the "
                "collector is asked to delete what it holds of this install."
            )
            return
        self.confirming_off = False
        deleted = await self.chinwag.call(telemetry.turn_off)
        if deleted is None:
            return
        self.notice(
            "Telemetry is off; the local queue is deleted"
            + (
                " and the collector deleted what it held."
                if deleted
                else "; the collector could not be reached, it is asked again at the next start."
            )
        )
        await self.reload()

    def action_close(self) -> None:
        self.dismiss(None)
