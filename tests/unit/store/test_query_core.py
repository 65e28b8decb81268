"""The sans-IO query core against a real SQLite archive: §6 semantics end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness.archives import ArchiveBackend

from chat.waku.message import WakuMessage
from chat.waku.store.server_core import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    QueryPlan,
    StoreQueryResponse,
    answer,
    archive_failure,
    encoded_answer,
    plan_query,
    plan_request,
    rate_limited_response,
)
from chat.waku.store.wire import StoreQueryRequest
from storage.archive import Archive, ArchiveRecord, ArchiveUnavailable, CursorNotFound

PUBSUB = "/waku/2/rs/42/0"
T0 = 1_700_000_000 * 10**9


def make_message(i: int, topic: str = "/app/1/chat/proto") -> WakuMessage:
    return WakuMessage(payload=f"m{i}".encode(), content_topic=topic, timestamp=T0 + i * 10**9)


@pytest.fixture
def archive(archive_backend: ArchiveBackend) -> Iterator[Archive]:
    a = archive_backend.open()
    for i in range(250):
        msg = make_message(i)
        a.insert(
            ArchiveRecord(msg.hash(PUBSUB), PUBSUB, msg.content_topic, msg.timestamp, msg.encode())
        )
    yield a
    a.close()


def run(archive: Archive, req: StoreQueryRequest) -> StoreQueryResponse:
    plan = plan_query(req.encode())
    if not isinstance(plan, QueryPlan):
        return plan
    try:
        rows = archive.query(plan.archive_query)
    except CursorNotFound as exc:
        return archive_failure(plan, exc)
    return answer(plan, rows)


def hashes(range_: range) -> list[bytes]:
    return [make_message(i).hash(PUBSUB) for i in range_]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(None, DEFAULT_PAGE_SIZE), (0, DEFAULT_PAGE_SIZE), (7, 7), (10**9, MAX_PAGE_SIZE)],
)
def test_page_size_default_and_clamp(archive: Archive, limit: int | None, expected: int) -> None:
    resp = run(
        archive, StoreQueryRequest(request_id="r", pagination_limit=limit, pagination_forward=True)
    )
    assert resp.status_code == 200 and resp.status_desc == "OK" and resp.request_id == "r"
    assert len(resp.messages) == expected


def test_forward_pagination_ascending_with_cursor_of_newest_entry(archive: Archive) -> None:
    req = StoreQueryRequest(
        request_id="r",
        pubsub_topic=PUBSUB,
        content_topics=("/app/1/chat/proto",),
        pagination_forward=True,
        pagination_limit=100,
    )
    seen: list[bytes] = []
    pages = 0
    while True:
        resp = run(archive, req)
        pages += 1
        page = [kv.message_hash for kv in resp.messages]
        seen += page
        if resp.pagination_cursor is None:
            break
        assert resp.pagination_cursor == page[-1]
        req = StoreQueryRequest(**{**_as_dict(req), "pagination_cursor": resp.pagination_cursor})
    assert pages == 3
    assert seen == hashes(range(250))


def test_backward_pagination_pages_ascending_cursor_is_oldest_entry(archive: Archive) -> None:
    req = StoreQueryRequest(request_id="r", pagination_forward=False, pagination_limit=100)
    first = run(archive, req)
    assert [kv.message_hash for kv in first.messages] == hashes(range(150, 250))
    assert first.pagination_cursor == hashes(range(150, 151))[0]
    second = run(
        archive,
        StoreQueryRequest(**{**_as_dict(req), "pagination_cursor": first.pagination_cursor}),
    )
    assert [kv.message_hash for kv in second.messages] == hashes(range(50, 150))
    third = run(
        archive,
        StoreQueryRequest(**{**_as_dict(req), "pagination_cursor": second.pagination_cursor}),
    )
    assert [kv.message_hash for kv in third.messages] == hashes(range(50))
    assert third.pagination_cursor is None


def test_exact_page_boundary_has_no_cursor(archive: Archive) -> None:
    resp = run(
        archive,
        StoreQueryRequest(
            request_id="r",
            time_start=T0,
            time_end=T0 + 9 * 10**9,
            pagination_limit=10,
            pagination_forward=True,
        ),
    )
    assert len(resp.messages) == 10 and resp.pagination_cursor is None


def test_include_data_returns_message_and_pubsub_topic(archive: Archive) -> None:
    resp = run(
        archive,
        StoreQueryRequest(
            request_id="r", include_data=True, pagination_limit=1, pagination_forward=True
        ),
    )
    (kv,) = resp.messages
    assert kv.message == make_message(0) and kv.pubsub_topic == PUBSUB


def test_presence_query_returns_only_stored_hashes(archive: Archive) -> None:
    asked = (*hashes(range(3)), b"\x05" * 32)
    resp = run(archive, StoreQueryRequest(request_id="r", message_hashes=asked))
    assert {kv.message_hash for kv in resp.messages} == set(hashes(range(3)))
    assert all(kv.message is None for kv in resp.messages)


@pytest.mark.parametrize(
    ("pubsub_topic", "found"),
    [(PUBSUB, range(3)), ("", range(3)), ("/waku/2/rs/42/9", range(0))],
)
def test_hash_lookup_with_only_a_pubsub_topic_narrows_to_it(
    archive: Archive, pubsub_topic: str, found: range
) -> None:
    # js-waku 0.0.36 sends its decoders' pubsub topic (or "") along with every hash lookup.
    lookup = hashes(range(3))
    req = StoreQueryRequest(
        request_id="r", include_data=True, pubsub_topic=pubsub_topic, message_hashes=lookup
    )
    resp = run(archive, req)
    assert (resp.status_code, resp.status_desc) == (200, "OK")
    assert [m.message_hash for m in resp.messages] == hashes(found)


def test_inverted_time_range_is_an_empty_success(archive: Archive) -> None:
    resp = run(archive, StoreQueryRequest(request_id="r", time_start=T0 + 100 * 10**9, time_end=T0))
    assert resp.status_code == 200 and resp.messages == () and resp.pagination_cursor is None


@pytest.mark.parametrize(
    ("request_", "code", "desc"),
    [
        (
            StoreQueryRequest(
                request_id="r", content_topics=tuple(f"/a/1/{i}/p" for i in range(1000))
            ),
            300,
            "BAD_RESPONSE: archive error: INVALID_QUERY: too many content topics",
        ),
        (
            StoreQueryRequest(request_id="r", pagination_cursor=bytes(32)),
            300,
            "BAD_RESPONSE: archive error: INVALID_QUERY: all zeroes cursor hash",
        ),
        (
            StoreQueryRequest(request_id="r", pagination_cursor=b"\x01" * 5),
            300,
            "BAD_RESPONSE: archive error: INVALID_QUERY: invalid cursor hash length: 5",
        ),
        (
            StoreQueryRequest(request_id="r", pagination_cursor=b"\x01" * 32),
            300,
            "BAD_RESPONSE: archive error: DRIVER_ERROR: cursor not found",
        ),
        (
            StoreQueryRequest(request_id="r", message_hashes=(b"\x01" * 31,)),
            300,
            "BAD_RESPONSE: archive error: INVALID_QUERY: invalid message hash length: 31",
        ),
        (
            StoreQueryRequest(
                request_id="r", message_hashes=(b"\x01" * 32,), content_topics=("/a/1/b/proto",)
            ),
            400,
            "BAD_REQUEST: message hashes cannot be combined with a content filter",
        ),
        (
            StoreQueryRequest(request_id="r", message_hashes=(b"\x01" * 32,), time_start=T0),
            400,
            "BAD_REQUEST: message hashes cannot be combined with a content filter",
        ),
    ],
)
def test_bad_requests_get_nwaku_codes_and_descriptions(
    archive: Archive, request_: StoreQueryRequest, code: int, desc: str
) -> None:
    resp = run(archive, request_)
    assert (resp.status_code, resp.status_desc, resp.request_id) == (code, desc, "r")
    assert resp.messages == ()


def test_undecodable_request_is_400_with_empty_request_id() -> None:
    resp = plan_query(b"\x12\x00")  # include_data-less garbage without request_id
    assert isinstance(resp, StoreQueryResponse)
    assert resp.status_code == 400 and resp.request_id == ""
    assert resp.status_desc.startswith("decoding rpc failed: ")


def test_rate_limited_response_is_nwakus() -> None:
    resp = rate_limited_response()
    assert (resp.request_id, resp.status_code, resp.status_desc) == (
        "N/A",
        429,
        "TOO_MANY_REQUESTS",
    )


def test_unavailable_archive_is_503() -> None:
    plan = plan_request(StoreQueryRequest(request_id="r"))
    assert isinstance(plan, QueryPlan)
    resp = archive_failure(plan, ArchiveUnavailable("closed"))
    assert (resp.status_code, resp.status_desc) == (503, "SERVICE_UNAVAILABLE")


def _as_dict(req: StoreQueryRequest) -> dict[str, object]:
    return {name: getattr(req, name) for name in StoreQueryRequest.__dataclass_fields__}


def test_large_messages_follow_the_configured_size_limit(archive_backend: ArchiveBackend) -> None:
    a = archive_backend.open(name="big")
    big = WakuMessage(payload=b"x" * 200_000, content_topic="/app/1/big/proto", timestamp=T0)
    a.insert(
        ArchiveRecord(big.hash(PUBSUB), PUBSUB, big.content_topic, big.timestamp, big.encode())
    )
    plan = plan_request(StoreQueryRequest(request_id="r", include_data=True))
    assert isinstance(plan, QueryPlan)
    rows = a.query(plan.archive_query)
    # Over the default 150 KiB: still reported as stored, without the body.
    (default,) = answer(plan, rows).messages
    assert default.message_hash == big.hash(PUBSUB) and default.message is None
    (status_sized,) = answer(plan, rows, max_message_size=1024 * 1024).messages
    assert status_sized.message == big
    a.close()


def test_a_response_has_a_byte_budget_and_cursors_reach_everything(
    archive_backend: ArchiveBackend,
) -> None:
    """100 messages of 140 KB are 14 MB for one full page; with the budget each response
    stays under it, and following the cursors returns every message once, in order."""
    big = archive_backend.open(name="big")
    messages = [
        WakuMessage(
            payload=i.to_bytes(4, "big") * 35_000, content_topic="/app/1/big/proto",
            timestamp=T0 + i * 10**9,
        )
        for i in range(30)
    ]  # fmt: skip
    for m in messages:
        big.insert(ArchiveRecord(m.hash(PUBSUB), PUBSUB, m.content_topic, m.timestamp, m.encode()))
    budget = 1_000_000
    for forward in (True, False):
        seen: list[bytes] = []
        cursor = None
        pages = 0
        while True:
            request = StoreQueryRequest(
                request_id=f"r{pages}", include_data=True, pubsub_topic=PUBSUB,
                pagination_limit=100, pagination_forward=forward, pagination_cursor=cursor,
            )  # fmt: skip
            plan = plan_query(request.encode(), max_response_bytes=budget)
            assert isinstance(plan, QueryPlan)
            rows = big.query(plan.archive_query)
            encoded = encoded_answer(plan, rows)
            assert len(encoded) <= budget + 100 * 200  # messages within budget, plus framing
            response = StoreQueryResponse.decode(encoded)
            assert response == answer(plan, rows)
            page = [kv.message_hash for kv in response.messages]
            seen = seen + page if forward else page + seen
            pages += 1
            cursor = response.pagination_cursor
            if cursor is None:
                break
        assert seen == [m.hash(PUBSUB) for m in messages]
        assert pages == 5  # 7 messages of 140 KB per 1 MB page
    big.close()


def test_the_encoded_answer_is_the_answer_encoded(archive: Archive) -> None:
    for request in (
        StoreQueryRequest("x", include_data=True, pubsub_topic=PUBSUB, pagination_limit=7),
        StoreQueryRequest("y", include_data=False, pubsub_topic=PUBSUB),
        StoreQueryRequest("z", include_data=True, message_hashes=tuple(hashes(range(3)))),
        StoreQueryRequest("", include_data=True, pubsub_topic="/waku/2/rs/42/9"),
    ):
        plan = plan_query(request.encode())
        assert isinstance(plan, QueryPlan)
        rows = archive.query(plan.archive_query)
        assert StoreQueryResponse.decode(encoded_answer(plan, rows)) == answer(plan, rows)
