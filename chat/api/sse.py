"""Server-sent events framing (the WHATWG `text/event-stream` format). Sans-IO: bytes out.

One messenger event is one SSE event: `event: <kind>` and one `data:` line of compact JSON
(JSON escapes newlines, so the data never spans lines). Comments (lines starting with ':')
keep idle connections and proxies from timing out; clients ignore them.
"""

from __future__ import annotations

from typing import Any

from chat.api.protocol import json_bytes

CONTENT_TYPE = b"text/event-stream; charset=utf-8"
KEEPALIVE_INTERVAL = 15.0
"""Seconds without an event before a comment is sent."""


class FramingError(ValueError):
    """A field that would break the framing (a line break in a name or comment)."""


def _single_line(text: str, what: str) -> str:
    if "\n" in text or "\r" in text:
        raise FramingError(f"an SSE {what} cannot contain a line break")
    return text


def event_frame(kind: str, data: Any) -> bytes:
    """`event: kind` + `data: <json>` + a blank line."""
    name = _single_line(kind, "event name").encode()
    return b"event: " + name + b"\ndata: " + json_bytes(data) + b"\n\n"


def comment_frame(text: str) -> bytes:
    return b": " + _single_line(text, "comment").encode() + b"\n\n"


def parse_frames(stream: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """The complete events in `stream` as (event name, data) pairs, and the unparsed rest.
    Comments are skipped; the default event name is 'message'. For clients and tests."""
    events: list[tuple[str, str]] = []
    normalized = stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    *blocks, rest = normalized.split(b"\n\n")
    for block in blocks:
        name, data = "message", []
        for line in block.decode("utf-8").split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            events.append((name, "\n".join(data)))
    return events, rest
