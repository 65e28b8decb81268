"""How long a server may take to write one response (chat/waku/write_pace.py): every chunk
must get through within a time that grows with its size, the whole within a cap; a reader
that stops reading is given up on within one chunk's time, one that keeps reading slowly is
not. The byte mover runs against trio's lockstep streams (a write completes only as the
other side reads), in virtual time."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from chat.waku.reqres import write_paced
from chat.waku.write_pace import DEFAULT_PACE, WritePace

PACE = WritePace(chunk=1000, min_rate=1000.0, min_time=2.0, max_time=30.0)


def test_a_chunk_gets_a_minimum_time_plus_time_for_its_size_within_the_cap() -> None:
    assert PACE.chunk_deadline(started=0.0, now=0.0, size=1000) == 3.0
    assert PACE.chunk_deadline(started=0.0, now=10.0, size=10) == 12.01
    assert PACE.chunk_deadline(started=0.0, now=29.0, size=1000) == 30.0  # the whole: 30 s
    # The defaults: 16 KiB chunks, each within 3 s + 1 s; a stalled reader is found in 4 s.
    assert DEFAULT_PACE.chunk_deadline(0.0, 0.0, DEFAULT_PACE.chunk) == 4.0


@pytest.mark.parametrize("field", ["chunk", "min_rate", "min_time", "max_time"])
def test_pace_values_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError):
        WritePace(**{field: 0})  # type: ignore[arg-type]


class Writer:
    """The `write` a server's stream offers, over one end of a lockstep pair."""

    def __init__(self, stream: trio.abc.SendStream) -> None:
        self.stream = stream

    async def write(self, data: bytes) -> None:
        await self.stream.send_all(data)


async def read_for(stream: trio.abc.ReceiveStream, pause: float, limit: int) -> int:
    """Read `limit` bytes, pausing `pause` seconds before each read; how many came."""
    got = 0
    while got < limit:
        await trio.sleep(pause)
        got += len(await stream.receive_some(limit - got))
    return got


async def test_a_reader_that_stops_is_given_up_on_within_one_chunk_s_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.testing.lockstep_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_for, receive, 0.0, 2500)  # 2.5 chunks, then nothing
        started = trio.current_time()
        delivered = await write_paced(Writer(send), [b"x" * 10, b"y" * 10_000], PACE)
        assert not delivered
        # Stalled in the third chunk of the body: given up 3 s after it began.
        assert trio.current_time() - started == pytest.approx(3.0, abs=0.01)


async def test_a_slow_reader_that_keeps_reading_gets_its_whole_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.testing.lockstep_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_for, receive, 1.5, 10_010)  # a read every 1.5 s
        assert await write_paced(Writer(send), [b"x" * 10, b"y" * 10_000], PACE)


async def test_the_whole_answer_ends_at_the_cap_however_steady_the_reader(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.testing.lockstep_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_for, receive, 1.5, 100_000)
        started = trio.current_time()
        assert not await write_paced(Writer(send), [b"z" * 100_000], PACE)
        assert trio.current_time() - started == pytest.approx(30.0, abs=0.01)
        nursery.cancel_scope.cancel()
