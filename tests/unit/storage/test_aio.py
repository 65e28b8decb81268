"""The async facade under trio: calls run off the loop, one at a time, on one connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import trio
import trio.testing

from storage import aio
from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.repositories.conversations import Conversation
from storage.store import Store


async def test_database_calls_do_not_block_the_trio_loop(
    profiles: Profiles, cheap_kdf: Callable[[], KdfParams]
) -> None:
    astore = await aio.create(profiles, "alice", "pw", display_name="A", now=1, kdf=cheap_kdf())
    released_by_trio = threading.Event()

    def slow_call(store: Store) -> bool:
        # Blocks its thread until a trio task runs: only possible if the loop is free.
        return released_by_trio.wait(timeout=30) and store.meta.display_name == "A"

    results: list[bool] = []
    async with astore, trio.open_nursery() as nursery:

        async def call() -> None:
            results.append(await astore.run(slow_call))

        nursery.start_soon(call)
        await trio.testing.wait_all_tasks_blocked()
        released_by_trio.set()
    assert results == [True]


async def test_concurrent_calls_are_serialised_on_one_connection(
    profiles: Profiles,
    cheap_kdf: Callable[[], KdfParams],
    make_conversation: Callable[..., Conversation],
) -> None:
    astore = await aio.create(profiles, "alice", "pw", display_name="A", now=1, kdf=cheap_kdf())
    await astore.run(lambda s: s.conversations.add(make_conversation()))
    inside = 0
    most_inside = 0
    lock = threading.Lock()

    def insert(i: int) -> Callable[[Store], int]:
        def call(store: Store) -> int:
            nonlocal inside, most_inside
            with lock:
                inside += 1
                most_inside = max(most_inside, inside)
            try:
                return store.messages.add(
                    conversation_id="c1",
                    message_id=f"m{i}",
                    sender="me",
                    outgoing=True,
                    body=f"body {i}",
                    sent_at=i,
                    state="queued",
                    now=i,
                )
            finally:
                with lock:
                    inside -= 1

        return call

    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(astore.run, insert(i))
    assert most_inside == 1
    assert await astore.run(lambda s: s.messages.count()) == 40
    await astore.aclose()
    reopened = await aio.unlock(profiles, "alice", "pw")
    async with reopened:
        assert await reopened.run(lambda s: len(s.messages.search("body"))) == 40


async def test_a_closed_store_refuses_calls(
    tmp_path: Path, cheap_kdf: Callable[[], KdfParams]
) -> None:
    profiles = Profiles(tmp_path / "p")
    astore = await aio.create(profiles, "bob", "pw", display_name="B", now=1, kdf=cheap_kdf())
    await astore.aclose()
    await astore.aclose()
    try:
        await astore.run(lambda s: s.meta.display_name)
    except RuntimeError as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("a closed store accepted a call")
