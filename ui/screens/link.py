"""Your contact link and its QR code: what you give people so they can add you.

The link comes first and always fits (80x24 and up): c copies it to the clipboard (OSC 52).
The QR code (61x31 cells for a usual link) goes beside the link when the window is wide
enough, below it when it is tall enough; otherwise a note says how big the window must be,
and that `chinwag link` prints it in a terminal of its own."""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from chat.events import IdentityView
from chat.session import render_qr

CHROME = 4
"""Columns and rows the dialog's border and padding take (2 + 2 each way)."""
GAP = 2
"""Columns between the link and the QR code beside it."""
TEXT_WIDTH = 50
"""Columns of the link column beside the QR code: with a usual link's QR code (61x31) the
two fit a 120x36 window, and everything fits 80x24 without it."""
TEXT_ROWS = 16
"""Rows of everything but the QR code when stacked (title, key, caption, link, buttons)."""


class LinkScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close"),
        Binding("c", "app.copy_link", "Copy link"),
    ]

    def __init__(self, identity: IdentityView) -> None:
        super().__init__()
        self.identity = identity
        self.qr = render_qr(identity.contact_link)
        lines = self.qr.splitlines()
        self.qr_size = (max(len(line) for line in lines), len(lines))
        self.layout_mode = "note"
        """beside, below, or note (no room for the QR code)."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="link-box", classes="dialog"):
            with Vertical(id="link-text"):
                yield Static(self.identity.display_name, classes="dialog-title", markup=False)
                yield Static(f"chat key {self.identity.chat_key}", classes="muted", markup=False)
                yield Static(
                    "Send this link to people so they can add you (c copies it):",
                    id="link-caption",
                )
                yield Static(self.identity.contact_link, id="link-value", markup=False)
                yield Static("", id="qr-note", classes="muted")
                with Horizontal(id="link-buttons"):
                    yield Button("Copy link (c)", variant="primary", id="copy-link")
                    yield Button("Continue (Esc)", id="close-link")
            yield Static(self.qr, id="link-qr", markup=False)

    def on_mount(self) -> None:
        self._arrange(self.app.size.width, self.app.size.height)

    def on_resize(self, event: events.Resize) -> None:
        self._arrange(event.size.width, event.size.height)

    def _arrange(self, width: int, height: int) -> None:
        qr_width, qr_height = self.qr_size
        box = self.query_one("#link-box")
        note = self.query_one("#qr-note", Static)
        beside = (qr_width + GAP + TEXT_WIDTH + CHROME, qr_height + CHROME)
        below = (max(qr_width, TEXT_WIDTH) + CHROME, qr_height + TEXT_ROWS)
        if width >= beside[0] and height >= beside[1]:
            self.layout_mode = "beside"
            box.styles.width = beside[0]
        elif width >= below[0] and height >= below[1]:
            self.layout_mode = "below"
            box.styles.width = below[0]
        else:
            self.layout_mode = "note"
            box.styles.width = min(width, 80)
        box.set_class(self.layout_mode == "below", "-below")
        self.query_one("#link-qr").display = self.layout_mode != "note"
        note.display = self.layout_mode == "note"
        note.update(
            f"No room for the QR code: it needs a window of {beside[0]}×{beside[1]} "
            f"(or {below[0]}×{below[1]}). Make this one bigger, or run 'chinwag link' in "
            "another terminal."
        )

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "copy-link":
            await self.run_action("app.copy_link")
        else:
            self.dismiss(None)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
