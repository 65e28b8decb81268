"""Store v3 client: one query per stream (reqres.exchange), pagination in either direction,
presence checks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

from chat.waku.message import DEFAULT_MAX_MESSAGE_SIZE
from chat.waku.reqres import ExchangeFailed, ExchangeTimedOut, exchange
from chat.waku.store.server_core import MAX_PAGE_SIZE
from chat.waku.store.wire import (
    PROTOCOL_ID,
    MessageKeyValue,
    StoreQueryRequest,
    StoreQueryResponse,
    StoreWireError,
)

DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_PAGES = 1000


class StoreClientError(Exception):
    """The query did not produce a usable answer (transport, timeout or a garbled reply)."""


class StoreQueryFailed(StoreClientError):
    """The store node answered with a failure status."""

    def __init__(self, response: StoreQueryResponse) -> None:
        super().__init__(f"store query failed: {response.status_code} {response.status_desc}")
        self.response = response


def new_request_id() -> str:
    return str(uuid.uuid4())


class StoreClient:
    def __init__(
        self,
        host: Any,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.host = host
        self.timeout = timeout
        self.max_message_size = max_message_size
        # A full page of the largest messages, plus protobuf overhead.
        self.max_response_size = MAX_PAGE_SIZE * (max_message_size + 1024) + 64 * 1024

    async def query(self, peer_id: Any, request: StoreQueryRequest) -> StoreQueryResponse:
        """Send one request and return the node's response, whatever its status."""
        try:
            raw = await exchange(
                self.host,
                peer_id,
                PROTOCOL_ID,
                request.encode(),
                max_response_size=self.max_response_size,
                time_limit=self.timeout,
            )
        except ExchangeTimedOut:
            raise StoreClientError(f"no store response within {self.timeout:g} s") from None
        except ExchangeFailed as exc:
            raise StoreClientError(f"store stream failed: {exc}") from exc
        try:
            return StoreQueryResponse.decode(raw, max_message_size=self.max_message_size)
        except StoreWireError as exc:
            raise StoreClientError(f"bad store response: {exc}") from exc

    async def pages(
        self, peer_id: Any, request: StoreQueryRequest, *, max_pages: int = DEFAULT_MAX_PAGES
    ) -> AsyncIterator[StoreQueryResponse]:
        """Every page of a query, following cursors in the request's direction.

        Each page lists its messages ascending; backward queries yield the newest page first.
        Raises StoreQueryFailed on a failure status.
        """
        for _ in range(max_pages):
            response = await self.query(peer_id, request)
            if not response.ok:
                raise StoreQueryFailed(response)
            yield response
            if response.pagination_cursor is None:
                return
            request = replace(
                request, request_id=new_request_id(), pagination_cursor=response.pagination_cursor
            )

    async def query_all(
        self, peer_id: Any, request: StoreQueryRequest, *, max_pages: int = DEFAULT_MAX_PAGES
    ) -> list[MessageKeyValue]:
        """Every result of a query, in ascending (timestamp, hash) order."""
        pages = [
            list(page.messages) async for page in self.pages(peer_id, request, max_pages=max_pages)
        ]
        if not request.pagination_forward:
            pages.reverse()
        return [kv for page in pages for kv in page]

    async def present(self, peer_id: Any, message_hashes: Sequence[bytes]) -> set[bytes]:
        """Which of these hashes the node stores (presence query, `include_data=false`):
        the evidence for a message's "stored" state."""
        found: set[bytes] = set()
        unique = list(dict.fromkeys(message_hashes))
        for start in range(0, len(unique), MAX_PAGE_SIZE):
            request = StoreQueryRequest(
                request_id=new_request_id(),
                include_data=False,
                message_hashes=tuple(unique[start : start + MAX_PAGE_SIZE]),
                pagination_forward=True,
                pagination_limit=MAX_PAGE_SIZE,
            )
            async for page in self.pages(peer_id, request):
                found.update(kv.message_hash for kv in page.messages)
        return found
