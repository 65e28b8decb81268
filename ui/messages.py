"""Textual messages: the messenger's lifecycle and events, carried to the app from the trio
side, and what the app tells its screens (posted to each screen; they do not bubble back)."""

from __future__ import annotations

from textual.message import Message

from chat.events import Event


class MessengerReady(Message):
    """The messenger is running; screens may call it."""


class MessengerFailed(Message):
    """The messenger could not start, or stopped with an error."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class MessengerEvent(Message):
    """One event from `Messenger.subscribe()`."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class MessengerStarted(Message, bubble=False):
    """To each screen: the messenger runs now; what only it knows (names, live states,
    health) may replace what a screen read from the database."""


class DisplayNameChanged(Message, bubble=False):
    """To each screen: the user's own display name is now `name`."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class MessengerStopped(Message, bubble=False):
    """To each screen: the messenger stopped (or never started); `reason` is a sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
