"""The router: patterns, parameters, 404 and 405."""

from __future__ import annotations

import pytest

from chat.api.protocol import ApiError, Request, Response
from chat.api.routing import Route, Router, RoutingError, split_path


async def _ok(request: Request) -> Response:
    return Response(200, request.path.encode())


def _router() -> Router:
    return Router(
        [
            Route("GET", "/v1/chats", _ok),
            Route("GET", "/v1/chats/{id}/messages", _ok),
            Route("POST", "/v1/chats/{id}/messages", _ok),
            Route("POST", "/v1/contacts/{chat_key}/accept", _ok),
        ]
    )


def test_literal_and_parameter_matches() -> None:
    router = _router()
    assert router.match("GET", b"/v1/chats").params == {}
    match = router.match("POST", b"/v1/chats/abc123/messages")
    assert match.route.pattern == "/v1/chats/{id}/messages"
    assert match.route.method == "POST"
    assert match.params == {"id": "abc123"}


def test_parameters_are_percent_decoded_within_their_segment() -> None:
    match = _router().match("POST", b"/v1/contacts/cw1%2Fx%20y%C3%A9/accept")
    assert match.params == {"chat_key": "cw1/x yé"}


@pytest.mark.parametrize(
    "path",
    [
        b"/v1/chat",
        b"/v1/chats/",
        b"/v1/chats//messages",
        b"//v1/chats",
        b"/v1/chats/a/b/messages",
        b"v1/chats",
        b"",
        b"/v1/contacts/%ff/accept",
        b"/V1/chats",
    ],
)
def test_unknown_paths_are_404(path: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        _router().match("GET", path)
    assert caught.value.status == 404
    assert "openapi.json" in caught.value.message


def test_a_known_path_with_another_method_is_405_with_allow() -> None:
    with pytest.raises(ApiError) as caught:
        _router().match("DELETE", b"/v1/chats/x/messages")
    assert caught.value.status == 405
    assert caught.value.headers == ((b"allow", b"GET, POST"),)
    with pytest.raises(ApiError) as caught:
        _router().match("GET", b"/v1/contacts/k/accept")
    assert caught.value.headers == ((b"allow", b"POST"),)


@pytest.mark.parametrize(
    "pattern", ["v1/x", "/v1/x/", "/v1//x", "/v1/{}", "/v1/{a-b}", "/v1/x{id}", "/v1/{id"]
)
def test_malformed_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(RoutingError):
        Router([Route("GET", pattern, _ok)])


def test_the_same_route_twice_is_refused() -> None:
    with pytest.raises(RoutingError, match="twice"):
        Router([Route("GET", "/v1/{a}", _ok), Route("GET", "/v1/{b}", _ok)])
    Router([Route("GET", "/v1/{a}", _ok), Route("POST", "/v1/{a}", _ok)])


def test_split_path() -> None:
    assert split_path(b"/a/b%2Fc") == ("a", "b/c")
    assert split_path(b"/") == ("",)
    assert split_path(b"a") is None
    assert split_path(b"/%c3%28") is None


def test_a_literal_segment_wins_over_a_parameter_for_the_route_and_allow() -> None:
    router = Router(
        [
            Route("POST", "/v1/communities/fetch", _ok),
            Route("GET", "/v1/communities/{id}", _ok),
        ]
    )
    assert router.match("POST", b"/v1/communities/fetch").route.pattern.endswith("/fetch")
    assert router.match("GET", b"/v1/communities/abc").params == {"id": "abc"}
    with pytest.raises(ApiError) as caught:
        router.match("OPTIONS", b"/v1/communities/fetch")
    assert caught.value.headers == ((b"allow", b"POST"),)
