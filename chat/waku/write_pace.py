"""How long a server may take to write one response before it gives up on the reader
(sans-IO: the deadline arithmetic; reqres.write_paced moves the bytes).

A peer that asks and then stops reading holds whatever the server holds while it writes:
for store, one of the few turns that query the archive and answer (request_gate.py). One
deadline for the whole response (store had 30 s) lets a reader that never reads keep that
turn for the whole time. So a response is written in chunks of `chunk` bytes, and each
chunk must get through within `min_time + len(chunk) / min_rate` seconds of starting: a
stalled reader is found within seconds, whatever the response's size, while a slow one
that keeps reading keeps its answer coming. The whole response still ends at `max_time`.

What "got through" means depends on the muxer: yamux takes a chunk once the reader's
window has room (the reader reads), mplex once the socket's buffers have room (the reader's
side drains the connection). Either way a reader that stops reading stops the chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024


@dataclass(frozen=True, slots=True)
class WritePace:
    chunk: int = 16 * KIB
    min_rate: float = 16 * KIB
    """Bytes per second a chunk must get through at, beyond `min_time`."""
    min_time: float = 3.0
    """Any chunk, however small, gets this long: a few round trips of a slow link. A write
    completes once the bytes are in the muxer's window and the socket's buffers (hundreds of
    KiB), not once the reader has them, so small answers are never held up by the link; only
    an answer larger than those, to a reader that does not read, waits here."""
    max_time: float = 30.0
    """The whole response."""

    def __post_init__(self) -> None:
        if self.chunk < 1:
            raise ValueError(f"chunk must be at least 1 byte, not {self.chunk}")
        for name in ("min_rate", "min_time", "max_time"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")

    def chunk_deadline(self, started: float, now: float, size: int) -> float:
        """When a chunk of `size` bytes, begun at `now` in a response begun at `started`,
        must be through."""
        return min(started + self.max_time, now + self.min_time + size / self.min_rate)


DEFAULT_PACE = WritePace()
