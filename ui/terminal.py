"""What chinwag changes in how Textual talks to the terminal: the keys it reads, and what
logging may write while the screen is drawn.

Alt+Enter. tmux, xterm (with metaSendsEscape), VTE terminals, Konsole and iTerm2 send it as
ESC CR. Textual's parser reads the ESC as "alt", then looks CR up as Enter and drops the
alt, so Alt+Enter arrived as Enter and sent the message instead of starting a new line.
`KeyParser` reports ESC CR (and CR with the eighth bit set, `\\x8d`, what xterm sends with
its default eightBitInput) as alt+enter. Terminals that speak the kitty keyboard protocol
(kitty, WezTerm, foot, Ghostty) already report alt+enter, shift+enter and ctrl+enter, and
pass through unchanged. Everywhere, Ctrl+J sends LF, read as ctrl+j.

Textual's Linux driver builds its parser from its module's `XTermParser` name inside its
input thread, with no hook to pass another; `use_key_parser()` points that name at
`KeyParser` (tests/ui/test_terminal_keys.py fails if the driver stops using the name).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from textual import events
from textual._xterm_parser import XTermParser

ALT_ENTER_SEQUENCES = frozenset({"\x1b\r", "\x8d"})
"""ESC CR (meta sends escape) and CR | 0x80 (meta sets the eighth bit)."""


class KeyParser(XTermParser):
    """Textual's terminal parser, reading Alt+Enter as alt+enter."""

    def _sequence_to_key_events(self, sequence: str, alt: bool = False) -> Iterable[events.Key]:
        # `alt` with a lone CR: the parser met ESC CR while waiting for a longer escape
        # sequence, gave up and replays it as "ESC means alt" + CR.
        if sequence in ALT_ENTER_SEQUENCES or (alt and sequence == "\r"):
            return [events.Key("alt+enter", None)]
        return super()._sequence_to_key_events(sequence, alt)


def use_key_parser() -> None:
    """Make Textual's Linux driver read keys with `KeyParser` (no-op elsewhere)."""
    if sys.platform == "win32":
        return
    from textual.drivers import linux_driver

    if linux_driver.XTermParser is XTermParser:  # type: ignore[attr-defined]
        linux_driver.XTermParser = KeyParser  # type: ignore[attr-defined]


@contextmanager
def no_terminal_logging() -> Iterator[None]:
    """While the screen is drawn, log records go to the log file only: a handler that writes
    to the terminal (warnings to stderr, see chat/logs.py) would print over the screen,
    tracebacks included. It is put back afterwards."""
    root = logging.getLogger()
    muted = [
        handler
        for handler in root.handlers
        if isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
    ]
    for handler in muted:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in muted:
            root.addHandler(handler)
