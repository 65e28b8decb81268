from __future__ import annotations

import pytest
import trio
import trio.testing

from chat.waku.relay.sendqueue import SendQueue


def test_refuses_beyond_frame_and_byte_limits() -> None:
    queue = SendQueue(max_frames=3, max_bytes=10)
    assert queue.put(b"aaaa") and queue.put(b"bbbb")
    assert not queue.put(b"ccc")  # 11 bytes
    assert queue.put(b"cc")
    assert not queue.put(b"")  # 4th frame
    assert len(queue) == 3 and queue.queued_bytes == 10


async def test_batches_whole_frames_up_to_the_limit() -> None:
    queue = SendQueue(max_frames=10, max_bytes=100)
    for frame in (b"12345", b"678", b"90"):
        queue.put(frame)
    assert await queue.get_batch(8) == b"12345678"
    assert await queue.get_batch(1) == b"90"
    assert queue.queued_bytes == 0


async def test_waits_for_a_frame_and_ends_when_closed() -> None:
    queue = SendQueue(max_frames=10, max_bytes=100)
    got: list[bytes] = []

    async def reader() -> None:
        got.append(await queue.get_batch(100))
        with pytest.raises(trio.EndOfChannel):
            await queue.get_batch(100)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        queue.put(b"x")
        await trio.testing.wait_all_tasks_blocked()
        queue.close()
    assert got == [b"x"]
    assert not queue.put(b"y")


def test_has_room_below_the_fraction_in_frames_and_in_bytes() -> None:
    queue = SendQueue(max_frames=4, max_bytes=100)
    assert queue.has_room()
    queue.put(b"a")
    queue.put(b"b")
    assert queue.has_room()  # 2 of 4 frames
    queue.put(b"c")
    assert not queue.has_room()
    assert queue.has_room(0.75)
    big = SendQueue(max_frames=100, max_bytes=100)
    big.put(b"x" * 51)
    assert not big.has_room()  # 51 of 100 bytes


async def test_wait_for_room_returns_once_the_writer_takes_a_batch() -> None:
    queue = SendQueue(max_frames=4, max_bytes=100)
    for frame in (b"a", b"b", b"c", b"d"):
        queue.put(frame)
    waited = trio.Event()

    async def publisher() -> None:
        await queue.wait_for_room()
        waited.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(publisher)
        await trio.testing.wait_all_tasks_blocked()
        assert not waited.is_set()
        assert await queue.get_batch(2) == b"ab"
        await trio.testing.wait_all_tasks_blocked()
        assert waited.is_set()


async def test_wait_for_room_ends_when_the_queue_closes() -> None:
    queue = SendQueue(max_frames=2, max_bytes=100)
    queue.put(b"a")
    queue.put(b"b")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.wait_for_room)
        await trio.testing.wait_all_tasks_blocked()
        queue.close()
