"""What the API's handlers see and return: a parsed request, a JSON (or streaming) response,
and `ApiError`, an HTTP status with a sentence. Sans-IO: no sockets, no ASGI here."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chat.events import InvalidInput, MessengerError, NotFound, NotPossible

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
        """The body as a JSON object with only `allowed` keys; an empty body is `{}`."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body, parse_constant=_no_constants)
        except (ValueError, RecursionError):
            raise ApiError(400, "the request body is not valid JSON.") from None
        if not isinstance(value, dict):
            raise ApiError(400, "the request body must be a JSON object.")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ApiError(400, f"the request body has unknown field(s): {', '.join(unknown)}.")
        return value

    def query_int(self, name: str, *, default: int, low: int, high: int) -> int:
        text = self.query.get(name)
        if text is None:
            return default
        if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
            raise ApiError(400, f"'{name}' must be a whole number from {low} to {high}.")
        return int(text)


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


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
    return Response(
        status, json_bytes({"error": message}), ((b"content-type", JSON_TYPE), *headers)
    )


def no_content() -> Response:
    return Response(204)
