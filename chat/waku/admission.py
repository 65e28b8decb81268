"""Who may hold a connection to one of our small HTTP servers (the REST API, the metrics
endpoint): a table of open connections by source, with the shedding rule of ARCHITECTURE §10.
Sans-IO: the servers report what each connection does; this decides and counts.

A connection is *waiting* while it holds nothing of ours but a slot: idle between requests,
or still sending its request (the head, or a body). It is *busy* while we work for it (a
handler runs, a response or an event stream is written). A new connection takes a free slot.
When its source already holds `per_source` slots, or the server holds `total`, the connection
that has been waiting longest (of that source, or of all) is shed to make room: it costs
nothing to drop, and a client that sends its request at once is never the oldest waiting one.
When every slot that could make room is busy, the new connection is refused. So one source
can never hold more than `per_source` slots, and slow or idle connections, however many, can
only push out each other, never a request being answered.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

REPORT_INTERVAL = 60.0
"""Seconds between two log reports of sheds and refusals (a flood must not flood the log)."""


class AdmissionError(ValueError):
    """Limits that cannot work."""


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    total: int
    """Open connections in all."""
    per_source: int
    """Open connections from one address."""

    def __post_init__(self) -> None:
        if not 1 <= self.per_source <= self.total:
            raise AdmissionError(
                f"connection limits need 1 <= per source ({self.per_source}) "
                f"<= total ({self.total})"
            )


@dataclass(frozen=True, slots=True)
class Admitted:
    ticket: int
    """This connection's slot: pass it to `waiting`, `busy` and `release`."""
    shed: int | None
    """The slot that was taken back to make room: the server closes that connection."""


@dataclass(frozen=True, slots=True)
class Report:
    """Sheds and refusals since the previous report."""

    shed: int
    refused: int


class Admission:
    def __init__(self, limits: AdmissionLimits) -> None:
        self.limits = limits
        self._source: dict[int, str] = {}
        self._per_source: Counter[str] = Counter()
        self._waiting: dict[int, None] = {}
        """Waiting tickets, longest waiting first (dicts keep insertion order)."""
        self._next_ticket = 0
        self.admitted = 0
        self.shed = 0
        self.refused = 0
        self._reported = (0, 0)
        self._report_at: float | None = None

    @property
    def open(self) -> int:
        return len(self._source)

    def open_from(self, source: str) -> int:
        return self._per_source[source]

    def admit(self, source: str) -> Admitted | None:
        """A slot for a new connection from `source` (waiting, since it has sent nothing
        yet), possibly by shedding another; None when it must be refused."""
        victim: int | None = None
        if self._per_source[source] >= self.limits.per_source:
            victim = self._longest_waiting(source)
        elif len(self._source) >= self.limits.total:
            victim = self._longest_waiting(None)
        else:
            victim = -1  # room without shedding
        if victim is None:
            self.refused += 1
            return None
        if victim >= 0:
            self.release(victim)
            self.shed += 1
        ticket = self._next_ticket
        self._next_ticket += 1
        self._source[ticket] = source
        self._per_source[source] += 1
        self._waiting[ticket] = None
        self.admitted += 1
        return Admitted(ticket, victim if victim >= 0 else None)

    def waiting(self, ticket: int) -> None:
        """The connection now only waits (for its next request, or for the rest of one)."""
        if ticket in self._source:
            self._waiting.pop(ticket, None)
            self._waiting[ticket] = None  # newest waiting: shed last

    def busy(self, ticket: int) -> None:
        """We now work for the connection: it cannot be shed until it waits again."""
        self._waiting.pop(ticket, None)

    def release(self, ticket: int) -> None:
        """The connection is closed (releasing twice, or a shed ticket, is harmless)."""
        source = self._source.pop(ticket, None)
        if source is None:
            return
        self._waiting.pop(ticket, None)
        self._per_source[source] -= 1
        if not self._per_source[source]:
            del self._per_source[source]

    def report(self, now: float) -> Report | None:
        """What to log now: sheds and refusals since the last report, at most once per
        `REPORT_INTERVAL` (the first one at once); None when there is nothing or too soon."""
        if self._report_at is not None and now < self._report_at:
            return None
        shed, refused = self.shed - self._reported[0], self.refused - self._reported[1]
        if not shed and not refused:
            return None
        self._reported = (self.shed, self.refused)
        self._report_at = now + REPORT_INTERVAL
        return Report(shed, refused)

    def _longest_waiting(self, source: str | None) -> int | None:
        for ticket in self._waiting:
            if source is None or self._source[ticket] == source:
                return ticket
        return None


__all__ = [
    "REPORT_INTERVAL",
    "Admission",
    "AdmissionError",
    "AdmissionLimits",
    "Admitted",
    "Report",
]
