"""Async facade for trio code: every database call runs on a worker thread, one at a time.

The connection is shared by all calls, so a CapacityLimiter(1) serialises them; the trio loop
never blocks on SQLCipher or on the key derivation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio

from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.store import Store

T = TypeVar("T")


class AsyncStore:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._limiter = trio.CapacityLimiter(1)
        self._closed = False

    async def run(self, call: Callable[[Store], T]) -> T:
        """Run `call(store)` off the loop. Cancelling waits for the call to finish, so a
        transaction is never left half-done by a cancelled task."""
        if self._closed:
            raise RuntimeError("the store is closed")
        return await trio.to_thread.run_sync(call, self._store, limiter=self._limiter)

    async def aclose(self) -> None:
        if not self._closed:
            await self.run(Store.close)
            self._closed = True

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def unlock(profiles: Profiles, name: str, passphrase: str) -> AsyncStore:
    store = await trio.to_thread.run_sync(profiles.unlock, name, passphrase)
    return AsyncStore(store)


async def create(
    profiles: Profiles,
    name: str,
    passphrase: str,
    *,
    display_name: str,
    now: int,
    kdf: KdfParams | None = None,
) -> AsyncStore:
    def _create() -> Store:
        return profiles.create(name, passphrase, display_name=display_name, now=now, kdf=kdf)

    return AsyncStore(await trio.to_thread.run_sync(_create))
