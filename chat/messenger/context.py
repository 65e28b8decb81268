"""What every part of the messenger shares: settings, the clock, the profile DB, the event
fan-out to the faces, and a way to wake the scheduler."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import trio

from chat import events as ev
from chat.identity import Identity
from chat.messenger.config import MessengerConfig
from storage.aio import AsyncStore

log = logging.getLogger(__name__)


class EventFanOut:
    """Typed events to every subscriber. A subscriber that falls behind loses events
    (counted and logged) rather than stall the messenger."""

    def __init__(self) -> None:
        self._subscribers: list[trio.MemorySendChannel[ev.Event]] = []
        self.dropped = 0
        self.observers: list[Callable[[ev.Event], None]] = []
        """Called with every event as it happens (telemetry's recorder): each must be O(1)
        and never wait; one that raises is logged, never the messenger's problem."""

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, buffer: int = 1000) -> ev.Subscription:
        send, receive = trio.open_memory_channel[ev.Event](buffer)
        self._subscribers.append(send)
        return ev.Subscription(receive, lambda: self._forget(send))

    def _forget(self, channel: trio.MemorySendChannel[ev.Event]) -> None:
        """A subscriber closed its subscription: drop it now (a quiet messenger would
        otherwise keep it, and its buffer, until its next event)."""
        channel.close()
        if channel in self._subscribers:
            self._subscribers.remove(channel)

    def emit(self, event: ev.Event) -> None:
        for observer in self.observers:
            try:
                observer(event)
            except Exception:
                log.exception("an event observer failed")
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("a subscriber is behind; %d events dropped", self.dropped)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(channel)

    def observe_only(self, fact: ev.Event) -> None:
        """A fact for observers alone (chat/messenger/observed.py): subscribers never see it."""
        for observer in self.observers:
            try:
                observer(fact)
            except Exception:
                log.exception("an event observer failed")

    def close(self) -> None:
        for channel in self._subscribers:
            channel.close()
        self._subscribers.clear()


@dataclass
class MessengerContext:
    config: MessengerConfig
    clock: Callable[[], float]
    db: AsyncStore
    pickle_key: bytes
    """Encrypts the Olm session pickles (derived from the database key)."""
    events: EventFanOut
    wake_scheduler: Callable[[], None]
    """Something new is due (or may be): the scheduler looks again at once."""
    identity: Identity | None = None
    """The profile's identity, once the messenger has loaded it."""
    rejected: int = 0
    """Received messages refused (see `reject`)."""

    @property
    def me(self) -> Identity:
        if self.identity is None:
            raise ev.NotPossible("the messenger is not running")
        return self.identity

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def emit(self, event: ev.Event) -> None:
        self.events.emit(event)

    def note(self, fact: ev.Event) -> None:
        """A fact for telemetry's observer (chat/messenger/observed.py), not for the faces."""
        self.events.observe_only(fact)

    def reject(self, reason: str) -> None:
        """A received message is refused: logged, counted and reported, never shown."""
        self.rejected += 1
        log.warning("rejected an incoming message: %s", reason)
        self.emit(ev.Rejected(reason))
