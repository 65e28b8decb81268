"""One-request-one-response exchanges over py-libp2p streams: the client side (`exchange`) and
the server side's stream handling, shared by store, filter and light push.

The client pattern that works with nwaku, go-waku and js-waku servers: open a stream, write one
length-prefixed request, half-close, read one length-prefixed response, close.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.network.stream.net_stream import NetStream
from libp2p.peer.id import ID

from chat.waku.framing import FramingError, WritableStream, read_frame, write_frame
from chat.waku.write_pace import WritePace

STREAM_ERRORS: tuple[type[BaseException], ...] = (
    BaseLibp2pError,
    FramingError,
    OSError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
)
"""What a peer or the network can make a stream operation raise."""


CLOSE_TIME_LIMIT = 1.0
"""Seconds to spend closing a stream whose peer may never acknowledge it."""


class ExchangeFailed(Exception):
    """No response: the peer could not be reached, timed out, or broke the stream."""


class ExchangeTimedOut(ExchangeFailed):
    """No response within the exchange's time limit."""


def remote_peer(stream: INetStream) -> str:
    """The base58 peer id at the other end of a py-libp2p stream."""
    return str(stream.muxed_conn.peer_id)


async def close_quietly(stream: INetStream) -> None:
    """Close a stream whose peer may already be gone; resets it if a clean close fails."""
    try:
        await stream.close()
    except STREAM_ERRORS:
        try:
            await stream.reset()
        except STREAM_ERRORS:
            pass


async def end_served_stream(stream: INetStream, *, answered: bool) -> None:
    """End a server's stream: close it after an answer, reset it when no request came.
    js-waku opens streams eagerly and later writes its request on any it still sees as
    writable; a half-closed one would leave it waiting for an answer that never comes.
    Shielded and bounded, so it can run in a handler's `finally` even when cancelled."""
    with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIME_LIMIT):
        if answered:
            await close_quietly(stream)
            return
        try:
            await stream.reset()
        except STREAM_ERRORS:
            pass


async def write_paced(stream: WritableStream, parts: Sequence[bytes], pace: WritePace) -> bool:
    """Write `parts` one after another in chunks, each under the pace's deadline
    (write_pace.py; in trio's time, which tests replace with a MockClock). False when a
    chunk did not get through in time: the reader stalled, the rest is not written, and the
    caller resets the stream (a write cut short may have left half a frame in it)."""
    clock = trio.current_time
    started = clock()
    for part in parts:
        view = memoryview(part)
        for offset in range(0, len(part), pace.chunk):
            chunk = part if len(part) <= pace.chunk else bytes(view[offset : offset + pace.chunk])
            with trio.move_on_at(pace.chunk_deadline(started, clock(), len(chunk))):
                await stream.write(chunk)
                continue
            return False
    return True


async def exchange(
    host: IHost,
    peer_id: ID,
    protocol: str,
    request: bytes,
    *,
    max_response_size: int,
    time_limit: float,
) -> bytes:
    """Send one request frame and return the one response frame (raises ExchangeFailed)."""
    stream: INetStream | None = None
    try:
        with trio.fail_after(time_limit):
            stream = await host.new_stream(peer_id, [TProtocol(protocol)])
            await write_frame(stream, request)
            if isinstance(stream, NetStream):
                await stream.close_write()  # half-close: the request is complete
            return await read_frame(stream, max_response_size)
    except trio.TooSlowError:
        raise ExchangeTimedOut(f"{protocol} to {peer_id} timed out after {time_limit} s") from None
    except STREAM_ERRORS as exc:
        raise ExchangeFailed(f"{protocol} to {peer_id} failed: {exc!r}") from None
    finally:
        if stream is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIME_LIMIT):
                await close_quietly(stream)
