"""Textual messages that carry the messenger's lifecycle and events to the UI."""

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
