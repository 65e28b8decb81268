"""Contact requests from strangers: a small budget of their own, so contacts never wait.

Anyone may send us a contact request, and a new identity costs nothing. So messages from
people we have not chosen (strangers: nobody we asked or accepted, see chat/contacts.py)
get a budget separate from everything else:

- A token bucket (`rate` per second, at most `burst` at once) admits a stranger's message
  before it is decrypted; a message over the budget is dropped unopened.
- At most `max_held` requests of strangers are kept. One more drops a kept one: requests
  they closed themselves (withdrawn, expired) before open ones, the oldest first.
- The receive queue for strangers is bounded too; what it sheds is counted here.
- Every drop is counted. The total is reported at most every `report_every` seconds (the
  faces show it), not once per drop.

A dropped request is not lost for good if it is genuine: its sender's client sends it again
on its visible schedule (1 min, then tripling, for 14 days: chat/contacts.py), each copy a
new chance, and a store node keeps it for its retention. Contacts never go through this.

Sans-IO: time is passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class StrangerPolicy:
    rate: float = 0.2
    """Strangers' messages admitted per second, sustained (12 a minute)."""
    burst: int = 20
    """Admitted at once after a quiet time."""
    max_held: int = 200
    """Requests of strangers kept (shown, waiting for an answer)."""
    queue: int = 256
    """Strangers' messages waiting to be looked at; more shed the oldest."""
    report_every: float = 5.0
    """Seconds between two reports of the drop count."""


class DropReason(Enum):
    RATE = "rate"
    """Over the token bucket: dropped before it was opened."""
    QUEUE = "queue"
    """Shed from the full receive queue for strangers, unopened."""
    CAP = "cap"
    """A kept request dropped to stay within `max_held`."""


class TokenBucket:
    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> bool:
        self._tokens = min(float(self.burst), self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = now  # a clock that stepped back refills from here, not from the old time
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class StrangerBudget:
    def __init__(self, policy: StrangerPolicy | None = None, now: float = 0.0) -> None:
        self.policy = policy or StrangerPolicy()
        self._bucket = TokenBucket(self.policy.rate, self.policy.burst, now)
        self._open: OrderedDict[str, None] = OrderedDict()
        self._closed: OrderedDict[str, None] = OrderedDict()
        self.dropped = 0
        """Every drop since the profile began (restored at start)."""
        self.dropped_by_reason = dict.fromkeys(DropReason, 0)
        """Since start."""
        self._reported = 0
        self._last_report: float | None = None

    # ---- admission ---------------------------------------------------------------------------
    def admit(self, now: float) -> bool:
        """May a stranger's message be opened now? If not, it is counted as dropped."""
        if self._bucket.take(now):
            return True
        self._drop(DropReason.RATE)
        return False

    def shed(self) -> None:
        """The receive queue for strangers was full: its oldest message was dropped."""
        self._drop(DropReason.QUEUE)

    def _drop(self, reason: DropReason, count: int = 1) -> None:
        self.dropped += count
        self.dropped_by_reason[reason] += count

    # ---- the requests we keep ----------------------------------------------------------------
    def hold(self, chat_key: str, *, is_open: bool) -> list[str]:
        """Keep this stranger's request (a new one goes to the newest end; a request they
        closed moves among the closed ones). Returns the kept requests to drop now, if the
        cap is exceeded: closed ones first, then open ones, the oldest first."""
        self._open.pop(chat_key, None)
        self._closed.pop(chat_key, None)
        (self._open if is_open else self._closed)[chat_key] = None
        dropped: list[str] = []
        while len(self) > self.policy.max_held:
            group = self._closed if self._closed else self._open
            oldest, _ = group.popitem(last=False)
            dropped.append(oldest)
        self._drop(DropReason.CAP, len(dropped))
        return dropped

    def release(self, chat_key: str) -> None:
        """Not a stranger's waiting request any more (answered, or they became a contact)."""
        self._open.pop(chat_key, None)
        self._closed.pop(chat_key, None)

    def holds(self, chat_key: str) -> bool:
        return chat_key in self._open or chat_key in self._closed

    def __len__(self) -> int:
        return len(self._open) + len(self._closed)

    # ---- telling the user --------------------------------------------------------------------
    def restore(self, dropped: int) -> None:
        """The count kept in the profile."""
        self.dropped = self._reported = dropped

    def next_report_at(self) -> float | None:
        if self.dropped == self._reported:
            return None
        if self._last_report is None:
            return 0.0  # the first report comes at once
        return self._last_report + self.policy.report_every

    def report(self, now: float) -> int | None:
        """The total to report now, or None if nothing new, or too soon after the last."""
        due = self.next_report_at()
        if due is None or now < due:
            return None
        self._reported = self.dropped
        self._last_report = now
        return self.dropped
