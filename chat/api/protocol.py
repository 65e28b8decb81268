"""What the API's handlers see and return: a parsed request, a JSON (or streaming) response,
and `ApiError`, an HTTP status with a sentence. Sans-IO: no sockets, no ASGI here."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chat.events import InvalidInput, MessengerError, NotAllowed, NotFound, NotPossible
from chat.text import find_lone_surrogate, join_surrogate_pairs, replace_lone_surrogates

JSON_TYPE = b"application/json"
MAX_BODY_BYTES = 64 * 1024
"""Every request body is bounded; a larger one is refused with 413 before it is read."""


class ApiError(Exception):
    """An HTTP error status with a sentence for the client; sent as `{"error": sentence}`."""

    def __init__(
        self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


MESSENGER_ERROR_STATUS: tuple[tuple[type[MessengerError], int], ...] = (
    (NotFound, 404),
    (InvalidInput, 400),
    (NotAllowed, 403),
    (NotPossible, 409),
)
"""The messenger's errors as HTTP statuses; any other MessengerError is a 400."""


def status_for(error: MessengerError) -> int:
    for kind, status in MESSENGER_ERROR_STATUS:
        if isinstance(error, kind):
            return status
    return 400


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    params: Mapping[str, str]
    """Values of the route's `{name}` segments, percent-decoded."""
    query: Mapping[str, str]
    body: bytes = b""

    def json_object(self, *, allowed: frozenset[str]) -> dict[str, Any]:
        """The body as a JSON object with only `allowed` keys; an empty body is `{}`. Every
        string in it is Unicode text (see chat.text): surrogate pairs are joined, a lone
        surrogate anywhere is a 400 naming the field. Every route's body passes here."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body, parse_constant=_no_constants)
        except (ValueError, RecursionError):
            raise ApiError(400, "the request body is not valid JSON.") from None
        if not isinstance(value, dict):
            raise ApiError(400, "the request body must be a JSON object.")
        try:
            checked: dict[str, Any] = _unicode(value, "")
        except RecursionError:
            raise ApiError(400, "the request body is nested too deeply.") from None
        unknown = sorted(set(checked) - allowed)
        if unknown:
            raise ApiError(400, f"the request body has unknown field(s): {', '.join(unknown)}.")
        return checked

    def query_int(self, name: str, *, default: int, low: int, high: int) -> int:
        text = self.query.get(name)
        if text is None:
            return default
        if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
            raise ApiError(400, f"'{name}' must be a whole number from {low} to {high}.")
        return int(text)


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _unicode(value: Any, field: str) -> Any:
    """`value`, a parsed JSON value inside body field `field` ("" for the body itself), with
    every string (keys too) checked and its surrogate pairs joined. Nesting is bounded by the
    body size and by the JSON parser's recursion limit."""
    if isinstance(value, str):
        lone = find_lone_surrogate(value)
        if lone is not None:
            where = f"'{field}'" if field else "a field name of the request body"
            raise ApiError(
                400,
                f"{where} is not Unicode text: it has {lone.describe()}; send text as UTF-8 "
                "(a surrogate is only valid as half of a pair).",
            )
        return join_surrogate_pairs(value)
    if isinstance(value, list):
        return [_unicode(item, field) for item in value]
    if isinstance(value, dict):
        checked: dict[str, Any] = {}
        for key, item in value.items():
            name = _unicode(key, field)
            checked[name] = _unicode(item, field or name)
        return checked
    return value


def text_field(body: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    """A string field of a JSON body: present and a string when required, else absent/null."""
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"the request body needs '{name}', a string.")
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"'{name}' must be a string.")
    return value


def text_list_field(
    body: Mapping[str, Any], name: str, *, required: bool, max_items: int
) -> list[str]:
    """A list of strings in a JSON body (absent or null: empty, unless required); at most
    `max_items` of them."""
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"the request body needs '{name}', a list of strings.")
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError(400, f"'{name}' must be a list of strings.")
    if len(value) > max_items:
        raise ApiError(400, f"'{name}' has more than {max_items} items.")
    return list(value)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()


SendChunk = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StreamResponse:
    """A response whose body is produced over time (server-sent events). `produce` writes
    chunks with the function it is given, and returns to end the body; the status line and
    headers go out with the first chunk, so a producer can subscribe to something before the
    client learns it is connected."""

    produce: Callable[[SendChunk], Awaitable[None]]
    content_type: bytes
    headers: tuple[tuple[bytes, bytes], ...] = field(default=())


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON; non-finite floats (never valid JSON) become null. A string that is
    not Unicode text (a lone surrogate, e.g. a request's field name quoted in an error) has no
    UTF-8 form: then every non-ASCII character is written as a JSON escape instead."""
    finite = _finite(value)
    try:
        return json.dumps(finite, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        return json.dumps(finite, separators=(",", ":")).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, json_bytes(value), ((b"content-type", JSON_TYPE),))


def error_response(
    status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> Response:
    # A sentence may quote what the client sent; it must still encode.
    body = json_bytes({"error": replace_lone_surrogates(message)})
    return Response(status, body, ((b"content-type", JSON_TYPE), *headers))


def no_content() -> Response:
    return Response(204)
