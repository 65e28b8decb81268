"""Store v3 (chat/waku/store/wire.py, query.py): a request as the server meets it (decode,
plan, run against a real SQLite archive, answer, encode), and a response as the client
decodes it."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from chat.waku.message import WakuMessage
from chat.waku.store.server_core import MAX_PAGE_SIZE, QueryPlan, answer, plan_query
from chat.waku.store.wire import (
    MessageKeyValue,
    StoreQueryRequest,
    StoreQueryResponse,
    StoreWireError,
)
from fuzz.contract import Target, check, round_trip, scratch_dir
from fuzz.targets.message import NOW_NS, OPEN_TOPIC, sample_messages
from storage.archive import ArchiveError, ArchiveRecord
from storage.archive.sqlite import SqliteArchive

CONTENT_TOPICS = ("/chinwag/1/a/proto", "/chinwag/1/b/proto", "/other/1/c/json")


def stored_messages() -> list[tuple[str, WakuMessage]]:
    return [
        (
            OPEN_TOPIC if i % 3 else "/waku/2/rs/42/1",
            WakuMessage(
                f"message {i}".encode(), CONTENT_TOPICS[i % 3], timestamp=NOW_NS + i * 10**9
            ),
        )
        for i in range(30)
    ]


@cache
def archive() -> SqliteArchive:
    store = SqliteArchive(scratch_dir("store") / "archive.sqlite")
    store.insert_many(
        [
            ArchiveRecord(m.hash(topic), topic, m.content_topic, m.timestamp, m.encode())
            for topic, m in stored_messages()
        ]
    )
    return store


def fuzz_store_request(data: bytes) -> None:
    plan = plan_query(data)
    if isinstance(plan, StoreQueryResponse):
        check(not plan.ok, "a refused request answered with success")
        StoreQueryResponse.decode(plan.encode())
        return
    check(isinstance(plan, QueryPlan), "plan_query returned neither a plan nor a response")
    round_trip(plan.request, StoreQueryRequest.decode(plan.request.encode()))
    try:
        rows = archive().query(plan.archive_query)
    except ArchiveError:
        return
    check(len(rows) <= MAX_PAGE_SIZE + 1, f"{len(rows)} rows for one page")
    response = answer(plan, rows)
    check(len(response.messages) <= plan.page_size, "more messages than the page size")
    round_trip(response, StoreQueryResponse.decode(response.encode()))


def _request_seeds() -> Iterable[bytes]:
    stored = stored_messages()
    hashes = tuple(m.hash(topic) for topic, m in stored[:3])
    yield StoreQueryRequest("r1", include_data=True, pubsub_topic=OPEN_TOPIC).encode()
    yield StoreQueryRequest(
        "r2",
        include_data=True,
        pubsub_topic=OPEN_TOPIC,
        content_topics=CONTENT_TOPICS[:2],
        time_start=NOW_NS,
        time_end=NOW_NS + 20 * 10**9,
        pagination_cursor=hashes[1],
        pagination_forward=True,
        pagination_limit=5,
    ).encode()
    yield StoreQueryRequest("r3", message_hashes=hashes).encode()
    yield StoreQueryRequest("r4", content_topics=CONTENT_TOPICS, pagination_limit=1000).encode()


def fuzz_store_response(data: bytes) -> None:
    try:
        response = StoreQueryResponse.decode(data)
    except StoreWireError:
        return
    # The encoder writes a key-value's pubsub topic only beside its message, so compare
    # from the first re-encoding on.
    again = StoreQueryResponse.decode(response.encode())
    round_trip(again, StoreQueryResponse.decode(again.encode()))
    check(len(again.messages) == len(response.messages), "re-encoding lost messages")


def _response_seeds() -> Iterable[bytes]:
    messages = sample_messages()
    yield StoreQueryResponse(
        "r1",
        200,
        "OK",
        tuple(MessageKeyValue(m.hash(OPEN_TOPIC), m, OPEN_TOPIC) for m in messages),
        pagination_cursor=b"\x07" * 32,
    ).encode()
    yield StoreQueryResponse(
        "r2", 200, "OK", tuple(MessageKeyValue(m.hash(OPEN_TOPIC)) for m in messages)
    ).encode()
    yield StoreQueryResponse("N/A", 429, "TOO_MANY_REQUESTS").encode()


TARGETS = (
    Target(
        name="store_request",
        decoder="chat.waku.store.server_core.plan_query (StoreQueryRequest.decode and validation), "
        "then storage.archive.sqlite.SqliteArchive.query and answer",
        contract="plan_query never raises (a bad request becomes an error response); the "
        "archive raises ArchiveError only; request and answer round-trip; pages are bounded",
        fuzz=fuzz_store_request,
        seeds=_request_seeds,
        tokens=(OPEN_TOPIC.encode(), *(t.encode() for t in CONTENT_TOPICS)),
    ),
    Target(
        name="store_response",
        decoder="chat.waku.store.wire.StoreQueryResponse.decode",
        contract="StoreWireError only; decode(encode(r)) == r once normalised",
        fuzz=fuzz_store_response,
        seeds=_response_seeds,
        max_len=16384,
    ),
)
