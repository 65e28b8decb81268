"""Withdrawals of contact requests that arrive before the request they withdraw (sans-IO).

A withdrawal travels inside the session its request opened, so it can be decrypted without
the request: relay may bring it while the request itself comes later, from a store scan.
Ignored then, the request would show as waiting until it expired. So a withdrawal of a
request we do not hold is kept here, by the sender's identity key (the one Olm proved) and
the request id it names, and applied when that very request arrives. Only its sender can
make one match. Kept for a request's lifetime at most, and at most `max_entries` (the
oldest forgotten first): anyone can send withdrawals, so this cannot grow without bound.
"""

from __future__ import annotations

from collections import OrderedDict

from chat.contacts import REQUEST_ID, RequestPolicy

MAX_EARLY_WITHDRAWALS = 64
KEEP_FOR = RequestPolicy().lifetime
"""A request arriving later than its lifetime after its withdrawal would be expired anyway."""


class EarlyWithdrawals:
    def __init__(self, *, max_entries: int = MAX_EARLY_WITHDRAWALS, keep_for: float = KEEP_FOR):
        self.max_entries = max_entries
        self.keep_for = keep_for
        self._until: OrderedDict[tuple[bytes, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def add(self, sender_identity_key: bytes, request_id: str, now: float) -> None:
        """A withdrawal of a request we do not hold (an id that is not one is not kept)."""
        if REQUEST_ID.fullmatch(request_id) is None:
            return
        self._forget_expired(now)
        key = (sender_identity_key, request_id)
        self._until[key] = now + self.keep_for
        self._until.move_to_end(key)
        while len(self._until) > self.max_entries:
            self._until.popitem(last=False)

    def take(self, sender_identity_key: bytes, request_id: str, now: float) -> bool:
        """Whether this request, arriving now, was withdrawn already (forgotten once taken)."""
        self._forget_expired(now)
        return self._until.pop((sender_identity_key, request_id), None) is not None

    def _forget_expired(self, now: float) -> None:
        # Kept for the same time each, so the oldest added expire first (a re-add moves last).
        while self._until:
            key, until = next(iter(self._until.items()))
            if until > now:
                return
            del self._until[key]
