"""Sans-IO store query core: request bytes in, an archive query out; rows in, a response out.

The rules (waku-wire.md §6, nwaku `waku_archive/archive.nim` and `waku_store/protocol.nim`):
- order is (timestamp, hash); forward walks it ascending, backward descending, and every
  response lists its page ascending;
- the returned cursor is the hash of the last entry of the page in walking order, present
  only when more entries exist (we fetch one row more than the page to know);
- page size: absent or 0 means 20, anything above 100 is clamped to 100;
- at most 10 content topics; a cursor must be 32 bytes and not all zero;
- errors carry nwaku's codes and descriptions: 400 when the request does not decode,
  300 "BAD_RESPONSE: archive error: ..." for invalid queries and archive failures,
  429 for rate limiting (request_id "N/A"), 503 when the archive is unavailable.

One rule is the spec's rather than nwaku's: hash lookups combined with content topics or a
time range are refused with 400 (nwaku silently ANDs them). A pubsub topic alone is accepted
and narrows the lookup, as in nwaku: js-waku (sdk 0.0.36) sends its decoders' pubsub topic with
every hash lookup; an empty one counts as absent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import IntEnum

from chat.waku.message import DEFAULT_MAX_MESSAGE_SIZE, MessageError, WakuMessage
from chat.waku.store.wire import (
    MessageKeyValue,
    StoreQueryRequest,
    StoreQueryResponse,
    StoreWireError,
)
from storage.archive import (
    ArchiveError,
    ArchiveQuery,
    ArchiveRow,
    ArchiveUnavailable,
    CursorNotFound,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_CONTENT_TOPICS = 10
# nwaku sets no bound; ours keeps one request's SQL and work small.
MAX_MESSAGE_HASHES = 1000
HASH_SIZE = 32
RATE_LIMITED_REQUEST_ID = "N/A"


class StatusCode(IntEnum):
    SUCCESS = 200
    BAD_RESPONSE = 300
    BAD_REQUEST = 400
    TOO_MANY_REQUESTS = 429
    SERVICE_UNAVAILABLE = 503


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """A valid request and the archive query that answers it (one row more than the page)."""

    request: StoreQueryRequest
    archive_query: ArchiveQuery
    page_size: int


def page_size_for(limit: int | None) -> int:
    if not limit:
        return DEFAULT_PAGE_SIZE
    return min(limit, MAX_PAGE_SIZE)


def _invalid_query(request_id: str, cause: str) -> StoreQueryResponse:
    return StoreQueryResponse(
        request_id=request_id,
        status_code=StatusCode.BAD_RESPONSE,
        status_desc=f"BAD_RESPONSE: archive error: INVALID_QUERY: {cause}",
    )


def rate_limited_response() -> StoreQueryResponse:
    """nwaku's answer to a rate-limited peer; the request itself is never read."""
    return StoreQueryResponse(
        request_id=RATE_LIMITED_REQUEST_ID,
        status_code=StatusCode.TOO_MANY_REQUESTS,
        status_desc="TOO_MANY_REQUESTS",
    )


def undecodable_response(cause: str) -> StoreQueryResponse:
    return StoreQueryResponse(
        request_id="",
        status_code=StatusCode.BAD_REQUEST,
        status_desc=f"decoding rpc failed: {cause}",
    )


def plan_query(raw: bytes) -> QueryPlan | StoreQueryResponse:
    """Decode and validate a request. Returns the plan, or the error response to send."""
    try:
        request = StoreQueryRequest.decode(raw)
    except StoreWireError as exc:
        return undecodable_response(str(exc))
    return plan_request(request)


def plan_request(request: StoreQueryRequest) -> QueryPlan | StoreQueryResponse:
    rid = request.request_id
    cursor = request.pagination_cursor
    if cursor is not None:
        if len(cursor) != HASH_SIZE:
            return _invalid_query(rid, f"invalid cursor hash length: {len(cursor)}")
        if cursor == bytes(HASH_SIZE):
            return _invalid_query(rid, "all zeroes cursor hash")
    if len(request.content_topics) > MAX_CONTENT_TOPICS:
        return _invalid_query(rid, "too many content topics")
    if len(request.message_hashes) > MAX_MESSAGE_HASHES:
        return _invalid_query(rid, "too many message hashes")
    for h in request.message_hashes:
        if len(h) != HASH_SIZE:
            return _invalid_query(rid, f"invalid message hash length: {len(h)}")
    has_content_filter = (
        bool(request.content_topics)
        or request.time_start is not None
        or request.time_end is not None
    )
    pubsub_topic = request.pubsub_topic
    if request.message_hashes:
        if has_content_filter:
            return StoreQueryResponse(
                request_id=rid,
                status_code=StatusCode.BAD_REQUEST,
                status_desc="BAD_REQUEST: message hashes cannot be combined with a content filter",
            )
        pubsub_topic = pubsub_topic or None
    page = page_size_for(request.pagination_limit)
    query = ArchiveQuery(
        pubsub_topic=pubsub_topic,
        content_topics=tuple(dict.fromkeys(request.content_topics)),
        time_start=request.time_start,
        time_end=request.time_end,
        message_hashes=tuple(dict.fromkeys(request.message_hashes)),
        cursor=cursor,
        forward=request.pagination_forward,
        limit=page + 1,
        include_data=request.include_data,
    )
    return QueryPlan(request=request, archive_query=query, page_size=page)


def _key_value(row: ArchiveRow, max_message_size: int) -> MessageKeyValue:
    if row.message is None:
        return MessageKeyValue(message_hash=row.message_hash)
    try:
        message = WakuMessage.decode(row.message, max_size=max_message_size)
    except MessageError as exc:
        # A stored message that no longer decodes is still evidence the hash is stored.
        log.warning("archived message %s does not decode: %s", row.message_hash.hex(), exc)
        return MessageKeyValue(message_hash=row.message_hash)
    return MessageKeyValue(
        message_hash=row.message_hash, message=message, pubsub_topic=row.pubsub_topic
    )


def answer(
    plan: QueryPlan,
    rows: list[ArchiveRow],
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> StoreQueryResponse:
    """The success response for the rows the archive returned (in walking order)."""
    page = rows[: plan.page_size]
    cursor = page[-1].message_hash if len(rows) > plan.page_size and page else None
    if not plan.archive_query.forward:
        page = page[::-1]
    return StoreQueryResponse(
        request_id=plan.request.request_id,
        status_code=StatusCode.SUCCESS,
        status_desc="OK",
        messages=tuple(_key_value(row, max_message_size) for row in page),
        pagination_cursor=cursor,
    )


def archive_failure(plan: QueryPlan, exc: ArchiveError) -> StoreQueryResponse:
    """The response for a query the archive could not run."""
    rid = plan.request.request_id
    if isinstance(exc, ArchiveUnavailable):
        return StoreQueryResponse(
            request_id=rid,
            status_code=StatusCode.SERVICE_UNAVAILABLE,
            status_desc="SERVICE_UNAVAILABLE",
        )
    cause = "cursor not found" if isinstance(exc, CursorNotFound) else str(exc)
    return StoreQueryResponse(
        request_id=rid,
        status_code=StatusCode.BAD_RESPONSE,
        status_desc=f"BAD_RESPONSE: archive error: DRIVER_ERROR: {cause}",
    )
