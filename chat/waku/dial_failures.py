"""Why a dial failed, as a few causes (telemetry's heartbeat `dial_fail`): py-libp2p wraps
the socket's error in layers (SwarmDialAllFailedError from a MultiError of SwarmExceptions
from OpenConnectionError from OSError), so the chain is walked to the deepest cause that
names one.

    timeout      no answer before our dial timeout (or a socket timeout)
    refused      the address answered with a refusal (nothing listens there)
    negotiation  a connection, but security or multiplexer negotiation failed
    limit        a resource or rate limit (ours or the peer's) refused it
    other        anything else (no address known, unreachable network...)
"""

from __future__ import annotations

from collections.abc import Iterator

import trio
from libp2p.network.exceptions import RateLimitError
from libp2p.protocol_muxer.exceptions import MultiselectClientError, MultiselectError
from libp2p.security.exceptions import HandshakeFailure, SecurityError
from libp2p.transport.exceptions import UpgradeFailure

DIAL_FAILURE_CAUSES = ("timeout", "refused", "negotiation", "limit", "other")
_MAX_WALKED = 64
"""Exceptions looked at in one chain (a chain is short; this only bounds a strange one)."""

_NEGOTIATION = (
    UpgradeFailure,
    HandshakeFailure,
    SecurityError,
    MultiselectError,
    MultiselectClientError,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, its causes and contexts, and the errors a MultiError or group holds."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < _MAX_WALKED:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        inner = getattr(item, "errors", None) or getattr(item, "exceptions", None)
        if isinstance(inner, list | tuple):
            todo.extend(e for e in inner if isinstance(e, BaseException))
        for linked in (item.__cause__, item.__context__):
            if linked is not None:
                todo.append(linked)


def dial_failure_cause(exc: BaseException) -> str:
    """The cause of a failed dial, one of DIAL_FAILURE_CAUSES."""
    found = list(_chain(exc))
    if any(isinstance(e, ConnectionRefusedError) for e in found):
        return "refused"
    if any(isinstance(e, TimeoutError | trio.TooSlowError) for e in found):
        return "timeout"
    if any(isinstance(e, RateLimitError) for e in found):
        return "limit"
    if any(isinstance(e, _NEGOTIATION) for e in found):
        return "negotiation"
    return "other"
