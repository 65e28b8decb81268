"""Server-sent event framing: what a standard EventSource parser reads back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.api.sse import FramingError, comment_frame, event_frame, parse_frames


def test_one_event_is_two_lines_and_a_blank_one() -> None:
    frame = event_frame("message_added", {"kind": "message_added", "text": "a\nb"})
    assert frame == (b'event: message_added\ndata: {"kind":"message_added","text":"a\\nb"}\n\n')
    assert comment_frame("keep-alive") == b": keep-alive\n\n"


def test_line_breaks_cannot_break_the_framing() -> None:
    with pytest.raises(FramingError):
        event_frame("a\nb", {})
    with pytest.raises(FramingError):
        comment_frame("x\ry")


def test_parse_frames_keeps_the_incomplete_rest() -> None:
    stream = comment_frame("hi") + event_frame("a", [1]) + b"event: b\ndata: [2"
    events, rest = parse_frames(stream)
    assert events == [("a", "[1]")]
    assert rest == b"event: b\ndata: [2"
    more, rest = parse_frames(rest + b"]\r\n\r\n")
    assert more == [("b", "[2]")] and rest == b""


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(
    kinds=st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")),
        max_size=5,
    ),
    data=st.lists(json_values, min_size=5, max_size=5),
)
def test_any_events_round_trip(kinds: list[str], data: list[Any]) -> None:
    kinds = [k or "x" for k in kinds]  # an empty event name is the default 'message'
    stream = b"".join(event_frame(k, d) for k, d in zip(kinds, data, strict=False))
    events, rest = parse_frames(stream)
    assert rest == b""
    assert [k for k, _ in events] == kinds
    assert [json.loads(d) for _, d in events] == data[: len(kinds)]
