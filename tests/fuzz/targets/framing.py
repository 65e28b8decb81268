"""Length-prefixed frames (chat/waku/framing.py), the first decoder every stream protocol's
bytes meet: the sans-IO `FrameDecoder`, fed in chunks of every size."""

from __future__ import annotations

from collections.abc import Iterable

from chat.waku.framing import MAX_VARINT_BYTES, FrameDecoder, FramingError, encode_frame
from fuzz.contract import Target, check

LIMIT = 1024
"""Small, so inputs of a few KB reach FrameTooLarge as well as complete frames."""


def fuzz_frames(data: bytes) -> None:
    if not data:
        return
    chunk = data[0] + 1  # the first byte chooses how the stream is cut into reads
    stream = data[1:]
    decoder = FrameDecoder(LIMIT)
    frames: list[bytes] = []
    try:
        for start in range(0, len(stream), chunk):
            frames += decoder.feed(stream[start : start + chunk])
            # What stays buffered is at most one incomplete frame and its prefix.
            check(decoder.buffered <= LIMIT + MAX_VARINT_BYTES, f"buffered {decoder.buffered}")
    except FramingError:
        return
    for frame in frames:
        check(len(frame) <= LIMIT, f"a {len(frame)}-byte frame passed a {LIMIT}-byte limit")
    again = FrameDecoder(LIMIT).feed(b"".join(encode_frame(f) for f in frames))
    check(again == frames, "frames changed after re-encoding")


def _seeds() -> Iterable[bytes]:
    yield b"\x00" + encode_frame(b"hello") + encode_frame(b"")
    yield b"\x03" + encode_frame(b"x" * 300) + encode_frame(b"y" * 1000)
    yield b"\xff" + encode_frame(b"z" * LIMIT)
    yield b"\x01" + b"\x80\x80\x80\x01"  # a multi-byte prefix, still incomplete


TARGETS = (
    Target(
        name="frames",
        decoder="chat.waku.framing.FrameDecoder.feed",
        contract="FramingError only; buffers at most one frame; frames re-encode to themselves",
        fuzz=fuzz_frames,
        seeds=_seeds,
        weight=0.5,
    ),
)
