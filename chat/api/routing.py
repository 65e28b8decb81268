"""Path patterns to handlers: `/v1/chats/{id}/messages` matches one segment per `{name}`.
Sans-IO. An unknown path is 404; a known path with another method is 405 with `Allow`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from chat.api.protocol import ApiError, Request, Response, StreamResponse

Handler = Callable[[Request], Awaitable[Response | StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: str
    handler: Handler


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    params: Mapping[str, str]


class RoutingError(ValueError):
    """A route table that cannot work (a bad pattern, or one path and method twice)."""


def _segments(pattern: str) -> tuple[str, ...]:
    if not pattern.startswith("/") or pattern.endswith("/"):
        raise RoutingError(f"pattern {pattern!r} must start with '/' and not end with one")
    parts = tuple(pattern[1:].split("/"))
    for part in parts:
        if not part or (("{" in part or "}" in part) and not _is_param(part)):
            raise RoutingError(f"pattern {pattern!r} has a malformed segment {part!r}")
    return parts


def _is_param(segment: str) -> bool:
    return (
        len(segment) > 2
        and segment[0] == "{"
        and segment[-1] == "}"
        and segment[1:-1].isidentifier()
    )


def split_path(raw_path: bytes) -> tuple[str, ...] | None:
    """The percent-decoded segments of a request path, or None when it cannot name a route
    (not absolute, or not UTF-8 once decoded). `%2F` stays inside its segment."""
    if not raw_path.startswith(b"/"):
        return None
    try:
        return tuple(unquote_to_bytes(part).decode("utf-8") for part in raw_path[1:].split(b"/"))
    except UnicodeDecodeError:
        return None


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes: list[tuple[tuple[str, ...], Route]] = []
        seen: set[tuple[str, tuple[str, ...]]] = set()
        for route in routes:
            segments = _segments(route.pattern)
            shape = tuple("{}" if _is_param(s) else s for s in segments)
            if (route.method, shape) in seen:
                raise RoutingError(f"{route.method} {route.pattern} is routed twice")
            seen.add((route.method, shape))
            self._routes.append((segments, route))

    @property
    def routes(self) -> list[Route]:
        return [route for _, route in self._routes]

    def match(self, method: str, raw_path: bytes) -> Match:
        segments = split_path(raw_path)
        allowed: list[str] = []
        if segments is not None:
            # A path that a pattern names literally (`/v1/communities/fetch`) is not also an
            # instance of a pattern with a parameter there (`/v1/communities/{id}`): only
            # the most literal patterns that match count, for the route and for `Allow`.
            bound = [
                (len(params), route, params)
                for pattern, route in self._routes
                if (params := _bind(pattern, segments)) is not None
            ]
            fewest = min((count for count, _, _ in bound), default=0)
            for count, route, params in bound:
                if count != fewest:
                    continue
                if route.method == method:
                    return Match(route, params)
                allowed.append(route.method)
        if allowed:
            allow = ", ".join(sorted(set(allowed)))
            raise ApiError(
                405,
                f"{method} is not allowed here; use {allow}.",
                ((b"allow", allow.encode()),),
            )
        raise ApiError(404, "there is no such path in this API; see /openapi.json.")


def _bind(pattern: tuple[str, ...], segments: tuple[str, ...]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    params: dict[str, str] = {}
    for expected, actual in zip(pattern, segments, strict=True):
        if _is_param(expected):
            if not actual:
                return None
            params[expected[1:-1]] = actual
        elif expected != actual:
            return None
    return params
