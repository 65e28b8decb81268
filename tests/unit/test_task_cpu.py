"""The benchmarks' CPU counter per person (tests/harness/task_cpu.py): each task tree's
steps are charged to its person, a driver's call can be charged to someone, and what runs
outside every tree is unattributed."""

from __future__ import annotations

import time
from typing import Any

import trio
from harness.task_cpu import UNATTRIBUTED, TaskCpu


def burn(seconds: float) -> None:
    """Spend `seconds` of this thread's CPU time."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


async def person(cpu: TaskCpu, name: str, seconds: float, task_status: Any) -> None:
    cpu.track(trio.lowlevel.current_task(), name)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, time.sleep, 0)  # a child task
        nursery.start_soon(_step, seconds)  # its steps count for `name` too
    task_status.started()


async def _step(seconds: float) -> None:
    await trio.lowlevel.checkpoint()
    burn(seconds)


def test_each_task_tree_is_charged_to_its_person() -> None:
    cpu = TaskCpu()

    async def main() -> None:
        trio.lowlevel.add_instrument(cpu)
        async with trio.open_nursery() as nursery:
            await nursery.start(person, cpu, "alice", 0.05)
            await nursery.start(person, cpu, "bob", 0.15)
        with cpu.charged_to("alice"):
            burn(0.05)  # a command called into Alice's messenger
        burn(0.02)  # the driver's own work
        trio.lowlevel.remove_instrument(cpu)

    trio.run(main)
    alice, bob = cpu.of("alice"), cpu.of("bob")
    assert 0.1 <= alice < 0.14, cpu.seconds
    assert 0.15 <= bob < 0.19, cpu.seconds
    assert cpu.of(UNATTRIBUTED) >= 0.02, cpu.seconds
