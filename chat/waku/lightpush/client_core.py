"""Which light push service nodes to use, sans-IO (reliability.md §4.2).

Push to 2 nodes at once. Replace a node after one lost connection or timeout (no response),
421, 500, 503 or 505. Retry, starting 1 s later and doubling, on no response or 429. Any other
failure (400, 413, 420) is about the message itself: no retry, no replacement.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from chat.waku.lightpush.wire import LightPushStatus

WANTED_NODES = 2
FIRST_RETRY_DELAY = 1.0
MAX_ATTEMPTS = 4


class Verdict(Enum):
    SENT = "sent"
    RETRY = "retry"
    REPLACE_AND_RETRY = "replace_and_retry"
    GIVE_UP = "give_up"


# The rules, as data: what a response status (None = no response at all) means.
_VERDICTS: dict[int | None, Verdict] = {
    LightPushStatus.SUCCESS: Verdict.SENT,
    None: Verdict.REPLACE_AND_RETRY,
    LightPushStatus.UNSUPPORTED_PUBSUB_TOPIC: Verdict.REPLACE_AND_RETRY,
    LightPushStatus.INTERNAL_SERVER_ERROR: Verdict.REPLACE_AND_RETRY,
    LightPushStatus.SERVICE_NOT_AVAILABLE: Verdict.REPLACE_AND_RETRY,
    LightPushStatus.NO_PEERS_TO_RELAY: Verdict.REPLACE_AND_RETRY,
    LightPushStatus.OUT_OF_RLN_PROOF: Verdict.REPLACE_AND_RETRY,
    LightPushStatus.TOO_MANY_REQUESTS: Verdict.RETRY,
    LightPushStatus.BAD_REQUEST: Verdict.GIVE_UP,
    LightPushStatus.PAYLOAD_TOO_LARGE: Verdict.GIVE_UP,
    LightPushStatus.INVALID_MESSAGE: Verdict.GIVE_UP,
}


def verdict(status: int | None) -> Verdict:
    """Unknown non-2xx codes are treated like a server error."""
    return _VERDICTS.get(status, Verdict.REPLACE_AND_RETRY)


def retry_delay(attempt: int) -> float:
    """Delay before attempt number `attempt` (1-based; the first attempt has none)."""
    return 0.0 if attempt <= 1 else FIRST_RETRY_DELAY * 2 ** (attempt - 2)


class ServicePool:
    """An ordered list of candidates; the first `wanted` are in use."""

    def __init__(self, candidates: Sequence[str], wanted: int = WANTED_NODES) -> None:
        self.candidates = list(dict.fromkeys(candidates))
        self.wanted = wanted
        self.replacements = 0

    @property
    def active(self) -> list[str]:
        return self.candidates[: self.wanted]

    def replace(self, peer: str) -> None:
        """Move a failed node to the back of the line, so the next candidate takes its place."""
        if peer in self.candidates:
            self.candidates.remove(peer)
            self.candidates.append(peer)
            self.replacements += 1
