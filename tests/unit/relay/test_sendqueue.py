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
