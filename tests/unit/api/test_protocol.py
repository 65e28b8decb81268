"""Request bodies and queries as the handlers see them; JSON out; error statuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chat.api.protocol import (
    ApiError,
    Request,
    error_response,
    json_bytes,
    status_for,
    text_field,
)
from chat.events import InvalidInput, MessengerError, NotFound, NotPossible


def _request(body: bytes = b"", **query: str) -> Request:
    return Request("POST", "/x", {}, query, body)


def _status(call: Any) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value.status, caught.value.message


def test_json_object_bodies() -> None:
    allowed = frozenset({"text", "reply_to"})
    assert _request(b"").json_object(allowed=allowed) == {}
    assert _request(b"  \n").json_object(allowed=allowed) == {}
    assert _request(b'{"text": "hi"}').json_object(allowed=allowed) == {"text": "hi"}
    for bad in (b"{", b"\xff", b'{"text": NaN}', b"[" * 100_000):
        assert _status(lambda b=bad: _request(b).json_object(allowed=allowed))[0] == 400
    status, message = _status(lambda: _request(b"[1]").json_object(allowed=allowed))
    assert (status, message) == (400, "the request body must be a JSON object.")
    status, message = _status(lambda: _request(b'{"txt": 1, "x": 2}').json_object(allowed=allowed))
    assert message == "the request body has unknown field(s): txt, x."


def test_text_fields() -> None:
    assert text_field({"a": "x"}, "a", required=True) == "x"
    assert text_field({}, "a", required=False) is None
    assert text_field({"a": None}, "a", required=False) is None
    assert _status(lambda: text_field({}, "a", required=True)) == (
        400,
        "the request body needs 'a', a string.",
    )
    assert _status(lambda: text_field({"a": 1}, "a", required=False))[0] == 400


def test_query_ints() -> None:
    assert _request().query_int("limit", default=50, low=1, high=500) == 50
    assert _request(limit="7").query_int("limit", default=50, low=1, high=500) == 7
    for bad in ("0", "501", "-1", "x", "", "1e3", "²"):
        call = lambda b=bad: _request(limit=b).query_int("limit", default=50, low=1, high=500)  # noqa: E731
        assert _status(call) == (400, "'limit' must be a whole number from 1 to 500.")


def test_messenger_errors_map_to_statuses() -> None:
    assert status_for(NotFound("x")) == 404
    assert status_for(InvalidInput("x")) == 400
    assert status_for(NotPossible("x")) == 409
    assert status_for(MessengerError("x")) == 400


def test_json_out_is_compact_utf8_and_never_invalid() -> None:
    assert json_bytes({"a": "é", "b": [1.5, float("inf")]}) == '{"a":"é","b":[1.5,null]}'.encode()
    response = error_response(409, "no.", ((b"x", b"y"),))
    assert response.status == 409
    assert json.loads(response.body) == {"error": "no."}
    assert (b"content-type", b"application/json") in response.headers
    assert (b"x", b"y") in response.headers


def test_an_error_quoting_a_lone_surrogate_still_encodes() -> None:
    """Found by the api_request fuzz target: a body whose unknown field name is a lone
    surrogate escape made the 400 answer itself raise UnicodeEncodeError, out of the app."""
    request = _request(b'{"\\ud800y_name": "New name"}')
    status, message = _status(lambda: request.json_object(allowed=frozenset({"display_name"})))
    response = error_response(status, message)
    assert response.status == 400
    assert json.loads(response.body) == {"error": message}
