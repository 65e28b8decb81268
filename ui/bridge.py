"""The trio core inside Textual's asyncio loop: trio runs as a guest on the same thread.

`trio.lowlevel.start_guest_run` lets trio schedule its ticks through asyncio's
`call_soon_threadsafe`, so both event loops share one thread:
- trio → UI: trio code calls the app's `post_message` directly (same thread, no locking);
- UI → trio: `TrioToken.run_sync_soon` queues a callback that runs inside the trio run;
- shutdown: cancel the trio root scope and await the guest run's end, so every trio task
  (and the sockets it owns) is closed before the app exits.

The bridge owns one nursery; `start_soon` and `call` run work in it. `call` hands the result
(or the exception) back to the awaiting asyncio task; cancelling that task cancels the trio
work too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import outcome
import trio

log = logging.getLogger(__name__)

T = TypeVar("T")


class BridgeClosed(RuntimeError):
    """The trio side is not running (not started yet, or already shut down)."""

    def __init__(self) -> None:
        super().__init__("the network core is not running")


class TrioBridge:
    """One trio guest run with one nursery, for the lifetime of the UI."""

    def __init__(self) -> None:
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._root: trio.CancelScope | None = None
        self._done: asyncio.Future[outcome.Outcome[None]] | None = None
        self._closing = False
        self._waiting: set[asyncio.Future[Any]] = set()
        """Futures of `call`s not yet answered; failed with BridgeClosed when trio ends."""

    @property
    def running(self) -> bool:
        return self._nursery is not None and not self._closing

    async def start(self) -> None:
        """Start trio as a guest of the running asyncio loop; returns once its nursery is open."""
        if self._done is not None:
            raise RuntimeError("the bridge was already started")
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        done: asyncio.Future[outcome.Outcome[None]] = loop.create_future()
        self._done = done

        def finished(result: outcome.Outcome[None]) -> None:
            if not ready.done():
                ready.set_exception(BridgeClosed())
            if not done.done():
                done.set_result(result)
            self._fail_waiting()

        def run_sync_soon_threadsafe(fn: Callable[[], object]) -> None:
            loop.call_soon_threadsafe(fn)

        trio.lowlevel.start_guest_run(
            self._main,
            ready,
            run_sync_soon_threadsafe=run_sync_soon_threadsafe,
            done_callback=finished,
            host_uses_signal_set_wakeup_fd=True,
        )
        await ready

    async def _main(self, ready: asyncio.Future[None]) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as root:
            self._root = root
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    ready.set_result(None)
                    await trio.sleep_forever()
            finally:
                self._nursery = None

    def _fail_waiting(self) -> None:
        for future in list(self._waiting):
            if not future.done():
                future.set_exception(BridgeClosed())
        self._waiting.clear()

    def run_sync_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Run a plain function inside the trio run, soon (safe from any thread)."""
        if self._token is None or self._closing:
            raise BridgeClosed()
        self._token.run_sync_soon(fn, *args)

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: Any) -> None:
        """Start a trio task in the bridge's nursery; its errors end the whole trio run."""

        def spawn() -> None:
            if self._nursery is not None:
                self._nursery.start_soon(fn, *args)
            else:  # the run is ending: whoever waits for an answer gets BridgeClosed
                self._fail_waiting()

        self.run_sync_soon(spawn)

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await a trio coroutine function from asyncio code; its result or exception comes
        back here. Cancelling the awaiting asyncio task cancels the trio task."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        scope = trio.CancelScope()

        async def run() -> None:
            with scope:
                try:
                    result = await fn(*args)
                except trio.Cancelled:
                    if not future.done():
                        future.set_exception(BridgeClosed())
                    raise
                except Exception as exc:
                    if not future.done():
                        future.set_exception(exc)
                    return
                if not future.done():
                    future.set_result(result)
            if not future.done():  # cancelled by the asyncio side before finishing
                future.set_exception(BridgeClosed())

        def on_done(f: asyncio.Future[T]) -> None:
            self._waiting.discard(f)
            if f.cancelled() and self._token is not None and not self._closing:
                self._token.run_sync_soon(scope.cancel)

        future.add_done_callback(on_done)
        self._waiting.add(future)
        try:
            self.start_soon(run)
        except BridgeClosed:
            self._waiting.discard(future)
            raise
        return await future

    async def stop(self) -> None:
        """Cancel everything in trio and wait until the guest run has ended."""
        if self._done is None:
            return
        if not self._closing and self._token is not None and self._root is not None:
            self._closing = True
            root = self._root
            try:
                self._token.run_sync_soon(root.cancel)
            except trio.RunFinishedError:
                pass
        result = await self._done
        self._closing = True
        if isinstance(result, outcome.Error):
            log.error("the trio core ended with an error", exc_info=result.error)
            result.unwrap()
