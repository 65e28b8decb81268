from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from libp2p.network.stream.exceptions import StreamEOF

from chat.waku.framing import (
    FrameDecoder,
    FrameReader,
    FrameTooLarge,
    FramingError,
    TruncatedFrame,
    encode_frame,
    encode_uvarint,
    read_frame,
)


class ChunkedStream:
    """A stream that hands out its bytes in fixed small chunks, then EOF like libp2p does."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data = data
        self.chunk = chunk
        self.reads = 0

    async def read(self, n: int | None = None) -> bytes:
        self.reads += 1
        if not self.data:
            raise StreamEOF()
        size = min(self.chunk, n or self.chunk)
        out, self.data = self.data[:size], self.data[size:]
        return out


@pytest.mark.parametrize(
    ("value", "encoded"), [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02")]
)
def test_uvarint(value: int, encoded: str) -> None:
    assert encode_uvarint(value).hex() == encoded


async def test_large_frame_in_tiny_chunks_needs_more_than_101_reads() -> None:
    payload = bytes(range(256)) * 2000  # 512 KB, where py-libp2p's read_exactly gives up
    stream = ChunkedStream(encode_frame(payload), chunk=4096)
    assert await read_frame(stream, max_frame_size=1 << 20) == payload
    assert stream.reads > 101


async def test_reader_yields_many_frames_then_clean_eof() -> None:
    frames = [b"a", b"", b"bc" * 1000, b"d"]
    stream = ChunkedStream(b"".join(encode_frame(f) for f in frames), chunk=7)
    reader = FrameReader(stream, max_frame_size=10_000)
    got = [await reader.next_frame() for _ in frames]
    assert got == frames
    assert await reader.next_frame() is None


async def test_oversized_length_is_refused_before_reading_the_body() -> None:
    stream = ChunkedStream(encode_uvarint(10_000_000) + b"x" * 10, chunk=64)
    with pytest.raises(FrameTooLarge):
        await read_frame(stream, max_frame_size=1000)


async def test_truncated_frame_and_missing_frame_are_errors() -> None:
    with pytest.raises(TruncatedFrame):
        await read_frame(ChunkedStream(encode_uvarint(10) + b"abc", chunk=64), 100)
    with pytest.raises(TruncatedFrame):
        await read_frame(ChunkedStream(b"", chunk=64), 100)


def test_overlong_varint_is_an_error() -> None:
    with pytest.raises(FramingError):
        FrameDecoder(100).feed(b"\xff" * 11)


@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(1, 50))
def test_decoder_reassembles_any_split(frames: list[bytes], split: int) -> None:
    wire = b"".join(encode_frame(f) for f in frames)
    decoder = FrameDecoder(1000)
    out: list[bytes] = []
    for i in range(0, len(wire), split):
        out += decoder.feed(wire[i : i + split])
    assert out == frames
    assert decoder.buffered == 0


@given(st.binary(max_size=200))
def test_decoder_on_garbage_raises_only_framing_errors(data: bytes) -> None:
    try:
        FrameDecoder(64).feed(data)
    except FramingError:
        pass
