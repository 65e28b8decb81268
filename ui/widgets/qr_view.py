"""A contact link and its QR code, drawn with half-block characters."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from chat.session import render_qr


class QrView(Vertical):
    def __init__(self, link: str, *, caption: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.link = link
        self.caption = caption

    def compose(self) -> ComposeResult:
        if self.caption:
            yield Static(self.caption, classes="qr-caption", markup=False)
        yield Static(render_qr(self.link), classes="qr", markup=False)
        yield Static(self.link, classes="qr-link", markup=False)
