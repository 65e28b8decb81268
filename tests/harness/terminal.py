"""Terminal bytes into a Pilot app, read by the parser the real driver uses.

`pilot.press("alt+enter")` makes the key event a test names; a terminal sends bytes (ESC CR
for Alt+Enter in tmux and xterm), and what the app gets is what its parser makes of them.
`send_bytes` runs them through `ui.terminal.KeyParser` (what the Linux driver reads with),
then posts every event at once, as the driver's input thread does when keys come faster
than the app handles them: type-ahead."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.message import Message

from ui.terminal import KeyParser

# What xterm and tmux send for keys the tests need (TERM=xterm-256color).
F1, F2, F3, F4 = "\x1bOP", "\x1bOQ", "\x1bOR", "\x1bOS"
F6 = "\x1b[17~"
ALT_ENTER = "\x1b\r"
ALT_UP, ALT_DOWN = "\x1b[1;3A", "\x1b[1;3B"
ENTER, TAB, ESCAPE, CTRL_J, CTRL_P = "\r", "\t", "\x1b", "\n", "\x10"


def alt(letter: str) -> str:
    return f"\x1b{letter}"


def paste(text: str) -> str:
    """Text as a terminal pastes it (bracketed paste)."""
    return f"\x1b[200~{text}\x1b[201~"


def parse(data: str) -> list[Message]:
    """The events the app gets for `data`, sent in one go and followed by a pause."""
    parser = KeyParser()
    return [*parser.feed(data), *parser.feed("")]


def send_bytes(app: App[Any], *chunks: str) -> None:
    """Each chunk as one burst from the terminal; all of them queued before the app runs."""
    for chunk in chunks:
        for event in parse(chunk):
            app.post_message(event)
