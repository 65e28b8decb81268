"""Keys typed ahead of a focus change land where the focus went.

Textual hands each key to the widget focused when the app reads it, into that widget's
queue; a Tab (or Enter that moves on) is acted on only after the key has bubbled up to the
screen, so keys typed right after it, already queued, landed in the previous field:
`Bob<Tab>xyz` named you "Bobxyz", and a password manager's auto-type would have written the
passphrase into the display name. `follow_focus` passes a key that reaches a widget after
the focus has moved on to the widget that has it now (in the order typed); `FieldInput`
moves the focus itself, at once, on Tab, Shift+Tab and (unless it is the last field) Enter,
so the keys behind it follow; the chat list (ui/widgets/chat_list.py) does the same for
text, which it hands to the composer.
"""

from __future__ import annotations

from textual import events
from textual.widget import Widget
from textual.widgets import Input

MODIFIERS = ("alt+", "ctrl+", "super+", "meta+", "hyper+")


def typed_character(event: events.Key) -> str | None:
    """The character a key types, or None: not printable, or with a modifier (Alt+A is a
    command, not an "a")."""
    if not event.is_printable or event.key.startswith(MODIFIERS):
        return None
    return event.character


def follow_focus(widget: Widget, event: events.Key) -> bool:
    """If the focus moved away from `widget` after `event` was handed to it, hand the key to
    the widget focused now; True if it did (the event is spent)."""
    if not event.is_forwarded:
        return False  # bubbled up from a child, not typed at this widget
    focused = widget.screen.focused
    if focused is None or focused is widget:
        return False
    event.stop()
    event.prevent_default()
    # A fresh event: the spent one is marked stopped. Forwarded, as the app forwards keys.
    focused._forward_event(events.Key(event.key, event.character))
    return True


class FieldInput(Input):
    """An input in a form: Tab, Shift+Tab and Enter move to the next (previous) field at
    once, so what is typed after them goes there. `last`: Enter submits instead."""

    def __init__(
        self, *, placeholder: str = "", password: bool = False, last: bool = False, id: str
    ) -> None:
        super().__init__(placeholder=placeholder, password=password, id=id)
        self.last = last

    async def _on_key(self, event: events.Key) -> None:
        if follow_focus(self, event):
            return
        step = {"tab": 1, "shift+tab": -1}.get(event.key)
        if event.key == "enter" and not self.last:
            step = 1
        if step is None:
            return
        event.stop()
        event.prevent_default()
        if step > 0:
            self.screen.focus_next()
        else:
            self.screen.focus_previous()
