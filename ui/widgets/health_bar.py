"""The health bar: always on screen — online/degraded/offline/sleeping, peers per shard,
whether the store answers, and how much waits in the outbox; while offline, when chinwag
dials its peers again (a countdown) and the key that dials now. When the network part
stops, it says so with the reason."""

from __future__ import annotations

from textual.widgets import Static

from chat.events import HealthView
from ui.format import health_summary
from ui.host import host

COUNTDOWN_EVERY = 1.0
"""Seconds between refreshes of "reconnecting in N s"."""


class HealthBar(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("○ starting…", id=id, markup=False)
        self.health: HealthView | None = None

    def on_mount(self) -> None:
        self.set_interval(COUNTDOWN_EVERY, self._tick)
        failure = host(self).messenger_failure
        if failure is not None:  # on a screen opened after the network part stopped
            self.stopped(failure)

    def show(self, health: HealthView) -> None:
        self.health = health
        for status in ("online", "degraded", "offline", "sleeping"):
            self.set_class(health.status == status, f"-{status}")
        self._render_health()

    def _render_health(self) -> None:
        if self.health is not None:
            self.update(health_summary(self.health, host(self).clock()))

    def _tick(self) -> None:
        if self.health is not None and self.health.next_dial_at is not None:
            self._render_health()

    def stopped(self, reason: str) -> None:
        """The messenger stopped: say so instead of a state that will not change."""
        self.health = None
        for status in ("online", "degraded", "sleeping"):
            self.remove_class(f"-{status}")
        self.add_class("-offline")
        self.update(f"○ stopped: {reason}")
