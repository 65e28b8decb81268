"""Length-prefixed framing (unsigned varint + bytes) for every Waku stream protocol.

py-libp2p's own helpers give up after 101 reads, which breaks store-sized responses on
mplex; these readers loop until the frame is complete and bound every length they read.
"""

from __future__ import annotations

from typing import Protocol

from libp2p.network.stream.exceptions import StreamEOF

MAX_VARINT_BYTES = 10
READ_CHUNK = 64 * 1024


class FramingError(Exception):
    """The peer sent something that is not a well-formed frame."""


class FrameTooLarge(FramingError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes is over the {limit}-byte limit")
        self.size = size
        self.limit = limit


class TruncatedFrame(FramingError):
    """The stream ended in the middle of a frame."""


class ReadableStream(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...


class WritableStream(Protocol):
    async def write(self, data: bytes) -> None: ...


def encode_uvarint(value: int) -> bytes:
    if value < 0:
        raise ValueError("uvarint cannot encode a negative number")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_frame(payload: bytes) -> bytes:
    return encode_uvarint(len(payload)) + payload


def _parse_uvarint(buf: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """(value, bytes used) or None when the buffer ends mid-varint."""
    value = 0
    shift = 0
    for i in range(start, min(len(buf), start + MAX_VARINT_BYTES)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i - start + 1
        shift += 7
    if len(buf) - start >= MAX_VARINT_BYTES:
        raise FramingError("length prefix is longer than 10 bytes")
    return None


class FrameDecoder:
    """Sans-IO: feed bytes in, take complete frames out. Never buffers past one frame limit."""

    def __init__(self, max_frame_size: int) -> None:
        self.max_frame_size = max_frame_size
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        while True:
            parsed = _parse_uvarint(self._buf)
            if parsed is None:
                return frames
            size, used = parsed
            if size > self.max_frame_size:
                raise FrameTooLarge(size, self.max_frame_size)
            end = used + size
            if len(self._buf) < end:
                return frames
            frames.append(bytes(self._buf[used:end]))
            del self._buf[:end]


class FrameReader:
    """Reads frames one at a time from a stream, buffering what arrives early."""

    def __init__(self, stream: ReadableStream, max_frame_size: int) -> None:
        self._stream = stream
        self._decoder = FrameDecoder(max_frame_size)
        self._ready: list[bytes] = []
        self._eof = False

    async def next_frame(self) -> bytes | None:
        """The next frame, or None at a clean end of stream. Raises TruncatedFrame mid-frame."""
        while not self._ready:
            if self._eof:
                if self._decoder.buffered:
                    raise TruncatedFrame("stream ended in the middle of a frame")
                return None
            try:
                chunk = await self._stream.read(READ_CHUNK)
            except StreamEOF:
                chunk = b""
            if not chunk:
                self._eof = True
                continue
            self._ready.extend(self._decoder.feed(chunk))
        return self._ready.pop(0)


async def read_frame(stream: ReadableStream, max_frame_size: int) -> bytes:
    """Exactly one frame, for request/response protocols. A missing frame is an error."""
    frame = await FrameReader(stream, max_frame_size).next_frame()
    if frame is None:
        raise TruncatedFrame("stream ended before a frame arrived")
    return frame


async def write_frame(stream: WritableStream, payload: bytes) -> None:
    await stream.write(encode_frame(payload))
