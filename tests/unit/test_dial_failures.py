"""A failed dial's cause, read through py-libp2p's layers of wrapping (the real exception
classes, chained as its swarm chains them)."""

from __future__ import annotations

import pytest
import trio
from libp2p.exceptions import MultiError
from libp2p.network.exceptions import RateLimitError, SwarmDialAllFailedError, SwarmException
from libp2p.security.exceptions import HandshakeFailure
from libp2p.transport.exceptions import OpenConnectionError, SecurityUpgradeFailure

from chat.waku.dial_failures import DIAL_FAILURE_CAUSES, dial_failure_cause


def wrapped(*root: BaseException) -> SwarmDialAllFailedError:
    """As the swarm raises it: every address's SwarmException, caused by the transport's
    error, caused by the root; all in a MultiError that causes the final error."""
    per_address = []
    for cause in root:
        try:
            try:
                raise OpenConnectionError("dial failed") from cause
            except OpenConnectionError as transport:
                raise SwarmException("fail to open connection") from transport
        except SwarmException as swarm:
            per_address.append(swarm)
    try:
        raise SwarmDialAllFailedError("unable to connect") from MultiError(per_address)
    except SwarmDialAllFailedError as final:
        return final


@pytest.mark.parametrize(
    ("root", "cause"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "refused"),
        (TimeoutError(), "timeout"),
        (trio.TooSlowError(), "timeout"),
        (RateLimitError("too many", 10), "limit"),
        (SecurityUpgradeFailure("noise"), "negotiation"),
        (HandshakeFailure("bad"), "negotiation"),
        (OSError(101, "Network is unreachable"), "other"),
    ],
)
def test_the_root_cause_is_found_under_the_wrapping(root: BaseException, cause: str) -> None:
    assert dial_failure_cause(wrapped(root)) == cause
    assert cause in DIAL_FAILURE_CAUSES


def test_a_refusal_on_any_address_counts_as_refused() -> None:
    error = wrapped(OSError(101, "unreachable"), ConnectionRefusedError(111, "refused"))
    assert dial_failure_cause(error) == "refused"


def test_a_chain_that_loops_ends() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    assert dial_failure_cause(first) == "other"
