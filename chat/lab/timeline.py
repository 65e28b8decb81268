"""Which fault starts or ends when: the scenario's faults as a time-ordered list of steps,
handed out as the (injected) clock reaches them. No I/O: the runner applies the steps.

A fault on "clients" becomes one fault per client, so every step has one target."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from chat.lab.live_scenario import Fault


@dataclass(frozen=True, slots=True)
class Step:
    at: float
    """Seconds after traffic starts."""
    starts: bool
    """True: the fault begins; False: it ends (a restart, a SIGCONT, links restored)."""
    fault: Fault
    index: int
    """The fault's position in the expanded list (names it in the report)."""


def expand(faults: tuple[Fault, ...], clients: int) -> list[Fault]:
    """Every fault with one target: "clients" becomes client0..client(N-1)."""
    out: list[Fault] = []
    for fault in faults:
        if fault.target == "clients":
            out.extend(dataclasses.replace(fault, target=f"client{i}") for i in range(clients))
        else:
            out.append(fault)
    return out


class FaultTimeline:
    def __init__(self, faults: list[Fault]) -> None:
        steps = []
        for index, fault in enumerate(faults):
            steps.append(Step(fault.at, True, fault, index))
            if fault.end is not None:
                steps.append(Step(fault.end, False, fault, index))
        # Ends before starts at the same instant: a target is restored before the next fault.
        self._steps = sorted(steps, key=lambda s: (s.at, s.starts, s.index))
        self._next = 0
        self.faults = faults

    def due(self, now: float) -> list[Step]:
        """The steps whose time has come (each once, in order)."""
        start = self._next
        while self._next < len(self._steps) and self._steps[self._next].at <= now:
            self._next += 1
        return self._steps[start : self._next]

    def next_at(self) -> float | None:
        """When the next step is due, or None when none is left."""
        return self._steps[self._next].at if self._next < len(self._steps) else None

    def active(self, now: float) -> list[Fault]:
        """The faults in force at `now`."""
        return [f for f in self.faults if f.at <= now and (f.end is None or now < f.end)]
