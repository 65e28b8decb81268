"""CPU time per person when many messengers share one trio run (a benchmark's process).

`TaskCpu` is a trio instrument: around every step of every task it reads the thread's CPU
clock (`time.thread_time`) and adds the difference to the person whose task tree the task
belongs to (a task registered with `track`, and everything it starts). On one thread, a
task step runs alone, so each second of CPU is counted once, for the right person, whatever
the machine's other processes do to wall time. What runs outside any tracked tree (the
benchmark's own driving code, the network stand-in) is counted as `unattributed`.

Work done on other threads is not seen: run the profiles' database calls inline
(tests/harness/fake_node.py `InlineStore`) for the count to hold their cost.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import trio
from trio.lowlevel import Task

UNATTRIBUTED = "unattributed"


class TaskCpu(trio.abc.Instrument):
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        """Person → CPU seconds of their tasks' steps so far."""
        self._roots: dict[Task, str] = {}
        self._owner: dict[Task, str] = {}
        self._step_started = 0.0

    def track(self, root: Task, name: str) -> None:
        """`root` and every task it starts (at any depth) are `name`'s."""
        self._roots[root] = name
        self._owner[root] = name
        self.seconds.setdefault(name, 0.0)

    def of(self, name: str) -> float:
        return self.seconds.get(name, 0.0)

    def so_far(self, name: str) -> float:
        """`of(name)` with the step running now, when it is one of `name`'s tasks (called
        from inside that step: a wrapped method it calls)."""
        total = self.of(name)
        if self._owner_of(trio.lowlevel.current_task()) == name:
            total += time.thread_time() - self._step_started
        return total

    @contextlib.contextmanager
    def charged_to(self, name: str) -> Iterator[None]:
        """The current task's steps count for `name` meanwhile: a driver's call into one
        person's messenger (a command runs in the caller's task)."""
        task = trio.lowlevel.current_task()
        before = self._owner_of(task)
        self._flush(before)
        self._owner[task] = name
        try:
            yield
        finally:
            self._flush(name)
            self._owner[task] = before

    def _flush(self, owner: str) -> None:
        """The running step's time so far is `owner`'s; the rest of it is counted anew."""
        now = time.thread_time()
        self.seconds[owner] = self.seconds.get(owner, 0.0) + now - self._step_started
        self._step_started = now

    def snapshot(self) -> dict[str, float]:
        return dict(self.seconds)

    def _owner_of(self, task: Task) -> str:
        owner = self._owner.get(task)
        if owner is not None:
            return owner
        found = UNATTRIBUTED
        parent = task.parent_nursery.parent_task if task.parent_nursery is not None else None
        while parent is not None:
            if parent in self._roots:
                found = self._roots[parent]
                break
            nursery = parent.parent_nursery
            parent = nursery.parent_task if nursery is not None else None
        self._owner[task] = found
        return found

    # ---- trio.abc.Instrument -----------------------------------------------------------------
    def before_task_step(self, task: Task) -> None:
        self._step_started = time.thread_time()

    def after_task_step(self, task: Task) -> None:
        took = time.thread_time() - self._step_started
        owner = self._owner_of(task)
        self.seconds[owner] = self.seconds.get(owner, 0.0) + took

    def task_exited(self, task: Task) -> None:
        self._owner.pop(task, None)
        self._roots.pop(task, None)
