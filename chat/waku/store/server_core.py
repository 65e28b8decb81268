"""Sans-IO store query core: request bytes in, an archive query out; rows in, a response out.

The rules (waku-wire.md §6, nwaku `waku_archive/archive.nim` and `waku_store/protocol.nim`):
- order is (timestamp, hash); forward walks it ascending, backward descending, and every
  response lists its page ascending;
- the returned cursor is the hash of the last entry of the page in walking order, present
  only when more entries exist (we fetch one row more than the page to know);
- page size: absent or 0 means 20, anything above 100 is clamped to 100; a page also ends
  before its messages pass `max_response_bytes` (ours, not nwaku's: 100 messages of
  150 KiB are 15 MB per response, which a few dozen parallel queries turn into gigabytes),
  with a cursor to the rest, so clients that follow cursors get everything;
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
    StoredEntry,
    StoreQueryRequest,
    StoreQueryResponse,
    StoreWireError,
    encode_stored_response,
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
DEFAULT_MAX_RESPONSE_BYTES = 2 * 1024 * 1024
"""Message bytes in one response (13 messages of the largest size; js-waku reads at most
4 MiB per frame)."""


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


def overloaded_response(request_id: str = RATE_LIMITED_REQUEST_ID) -> StoreQueryResponse:
    """The answer when the node has too much work in hand (503: ask another store node)."""
    return StoreQueryResponse(
        request_id=request_id,
        status_code=StatusCode.SERVICE_UNAVAILABLE,
        status_desc="SERVICE_UNAVAILABLE: too many queries in progress",
    )


def plan_query(
    raw: bytes, *, max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES
) -> QueryPlan | StoreQueryResponse:
    """Decode and validate a request. Returns the plan, or the error response to send."""
    try:
        request = StoreQueryRequest.decode(raw)
    except StoreWireError as exc:
        return undecodable_response(str(exc))
    return plan_request(request, max_response_bytes=max_response_bytes)


def plan_request(
    request: StoreQueryRequest, *, max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES
) -> QueryPlan | StoreQueryResponse:
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
        max_bytes=max_response_bytes if request.include_data else None,
    )
    return QueryPlan(request=request, archive_query=query, page_size=page)


def _page(plan: QueryPlan, rows: list[ArchiveRow]) -> tuple[list[ArchiveRow], bytes | None]:
    """The rows of the response in ascending order, and the cursor to the next page."""
    page = [row for row in rows if not row.beyond_budget][: plan.page_size]
    cursor = page[-1].message_hash if len(rows) > len(page) and page else None
    if not plan.archive_query.forward:
        page.reverse()
    return page, cursor


def _checked(row: ArchiveRow, max_message_size: int) -> WakuMessage | None:
    """The row's message if it still decodes (a stored message that does not is still
    evidence the hash is stored, so it is answered hash-only)."""
    if row.message is None:
        return None
    try:
        return WakuMessage.decode(row.message, max_size=max_message_size)
    except MessageError as exc:
        log.warning("archived message %s does not decode: %s", row.message_hash.hex(), exc)
        return None


def answer(
    plan: QueryPlan,
    rows: list[ArchiveRow],
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> StoreQueryResponse:
    """The success response for the rows the archive returned (in walking order)."""
    page, cursor = _page(plan, rows)
    messages = []
    for row in page:
        message = _checked(row, max_message_size)
        if message is None:
            messages.append(MessageKeyValue(message_hash=row.message_hash))
        else:
            messages.append(
                MessageKeyValue(row.message_hash, message=message, pubsub_topic=row.pubsub_topic)
            )
    return StoreQueryResponse(
        request_id=plan.request.request_id,
        status_code=StatusCode.SUCCESS,
        status_desc="OK",
        messages=tuple(messages),
        pagination_cursor=cursor,
    )


def encoded_answer(
    plan: QueryPlan,
    rows: list[ArchiveRow],
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> bytes:
    """`answer(plan, rows).encode()` without decoding and re-encoding every stored message:
    the stored bytes go into the response as they are, once they are checked to decode."""
    page, cursor = _page(plan, rows)
    entries = [
        StoredEntry(row.message_hash, row.message, row.pubsub_topic)
        if _checked(row, max_message_size) is not None
        else StoredEntry(row.message_hash)
        for row in page
    ]
    return encode_stored_response(
        plan.request.request_id, StatusCode.SUCCESS, "OK", entries, cursor
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
