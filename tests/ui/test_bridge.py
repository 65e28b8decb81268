"""The trio guest-run bridge inside a real Textual app (run headless under asyncio)."""

from __future__ import annotations

import asyncio

import pytest
import trio
from textual.app import App, ComposeResult
from textual.message import Message
from textual.widgets import Static

from ui.bridge import BridgeClosed, TrioBridge

COUNT = 1000


class Tick(Message):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n


class BridgeApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.bridge = TrioBridge()
        self.received: list[int] = []
        self.all_arrived = asyncio.Event()
        self.trio_task_finished = False

    def compose(self) -> ComposeResult:
        yield Static("bridge")

    async def on_mount(self) -> None:
        await self.bridge.start()

    async def on_unmount(self) -> None:
        await self.bridge.stop()  # even when a test fails half-way: no guest run left behind

    async def produce(self, count: int) -> None:
        try:
            for n in range(count):
                self.post_message(Tick(n))
                await trio.lowlevel.checkpoint()
            await trio.sleep_forever()  # lives until the bridge is stopped
        finally:
            self.trio_task_finished = True

    def on_tick(self, message: Tick) -> None:
        self.received.append(message.n)
        if len(self.received) == COUNT:
            self.all_arrived.set()


def test_a_thousand_messages_arrive_in_order_and_shutdown_leaves_no_task() -> None:
    async def scenario() -> None:
        app = BridgeApp()
        async with app.run_test() as pilot:
            app.bridge.start_soon(app.produce, COUNT)
            await asyncio.wait_for(app.all_arrived.wait(), 30)
            assert app.received == list(range(COUNT))
            await app.bridge.stop()
            assert app.trio_task_finished
            assert not app.bridge.running
            with pytest.raises(BridgeClosed):
                app.bridge.start_soon(app.produce, 1)
            await pilot.pause()

    asyncio.run(scenario())


def test_call_returns_results_and_raises_trio_errors_in_asyncio() -> None:
    async def double(x: int) -> int:
        await trio.sleep(0.001)
        return 2 * x

    async def fail() -> None:
        await trio.lowlevel.checkpoint()
        raise ValueError("nope")

    async def scenario() -> None:
        app = BridgeApp()
        async with app.run_test():
            assert await app.bridge.call(double, 21) == 42
            with pytest.raises(ValueError, match="nope"):
                await app.bridge.call(fail)
            # the run survives a failed call
            assert await app.bridge.call(double, 1) == 2
            await app.bridge.stop()

    asyncio.run(scenario())


def test_cancelling_the_asyncio_side_cancels_the_trio_task() -> None:
    finished: list[str] = []

    async def forever() -> None:
        try:
            await trio.sleep_forever()
        finally:
            finished.append("cancelled")

    async def scenario() -> None:
        app = BridgeApp()
        async with app.run_test() as pilot:
            task = asyncio.ensure_future(app.bridge.call(forever))
            await pilot.pause()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while not finished and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.001)  # the trio side runs between asyncio's turns
            assert finished == ["cancelled"]
            await app.bridge.stop()

    asyncio.run(scenario())


def test_stop_cancels_pending_calls_with_a_clear_error() -> None:
    async def scenario() -> None:
        app = BridgeApp()
        async with app.run_test() as pilot:
            task = asyncio.ensure_future(app.bridge.call(trio.sleep_forever))
            await pilot.pause()
            await app.bridge.stop()
            with pytest.raises(BridgeClosed):
                await task

    asyncio.run(scenario())
