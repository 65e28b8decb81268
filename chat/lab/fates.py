"""Per-message fate accounting for `chinwag lab run`, from what the clients' REST APIs show.

The runner tells the ledger what it sent (a tag in the text names each message), and hands it
snapshots of every client's chats: incoming messages with the receiver's `received_at` stamp,
and outgoing ones with the recipients that acknowledged them (`delivered_to`) at the moment
of the snapshot. All processes share one clock (one machine), so latency is
`received_at - sent_at`.

For each (message, expected receiver) pair the fate is one of
- delivered: held by the receiver within `late_after` seconds;
- late: held, but later than that;
- lost: never held before the run ended;
and the pair is also flagged duplicated (the receiver holds it more than once) or out of
order (it holds a later message of the same sender in the same chat before it). Across
senders, a message shown after one sent more than a second later is "shown out of send
order" (conversations are ordered by the senders' clocks).

A message ran ahead of its evidence when its sender showed a recipient in `delivered_to`
at a time when that recipient did not hold it (its `received_at` is later, or it never did).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chat.lab.stats import rounded, summary

TAG = re.compile(r"\blab:([a-z0-9]+)\b")
FATES = ("delivered", "late", "lost")


def tag_of(text: str) -> str | None:
    found = TAG.search(text)
    return found.group(1) if found else None


@dataclass
class Sent:
    tag: str
    sender: str
    chat: str
    """"direct" or "group"."""
    recipients: tuple[str, ...]
    sent_at: float
    sequence: int
    """Order among this sender's messages in this conversation."""
    conversation: str


@dataclass
class Holding:
    """What a receiver's snapshots showed of one message."""

    received_at: float
    copies: int = 1


@dataclass
class FateLedger:
    late_after: float
    sent: dict[str, Sent] = field(default_factory=dict)
    held: dict[tuple[str, str], Holding] = field(default_factory=dict)
    """(tag, receiver) -> first receipt."""
    acked_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    """(tag, recipient) -> when a snapshot first showed the sender counting it delivered."""
    arrival_order: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """(receiver, conversation) -> tags in the receiver's order (latest snapshot)."""
    shown_order: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """(viewer, conversation) -> every tag it shows (its own and others'), in its order."""
    send_failures: int = 0
    failed_sends: list[dict[str, Any]] = field(default_factory=list)
    """Writes the client's API refused or never answered: the message is not in `sent`."""
    send_answer_s: list[float] = field(default_factory=list)
    """How long each accepted write took the client's API to answer."""
    _sequences: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def record_send(
        self, tag: str, sender: str, chat: str, conversation: str,
        recipients: Sequence[str], at: float,
    ) -> None:  # fmt: skip
        key = (sender, conversation)
        self._sequences[key] += 1
        self.sent[tag] = Sent(
            tag, sender, chat, tuple(recipients), at, self._sequences[key], conversation
        )

    def record_send_failure(self, tag: str, at: float, error: str) -> None:
        sent = self.sent.pop(tag)
        self.send_failures += 1
        self.failed_sends.append(
            {"message": tag, "from": sent.sender, "at": rounded(at, 3), "error": error[:300]}
        )

    def observe_incoming(
        self, receiver: str, conversation: str, items: Iterable[tuple[str, float]]
    ) -> None:
        """One snapshot of a receiver's conversation: (tag, received_at) in its order."""
        order: list[str] = []
        counts: dict[str, int] = defaultdict(int)
        for tag, received_at in items:
            if tag not in self.sent:
                continue
            counts[tag] += 1
            order.append(tag)
            key = (tag, receiver)
            holding = self.held.get(key)
            if holding is None or received_at < holding.received_at:
                self.held[key] = Holding(received_at, holding.copies if holding else 1)
        for tag, copies in counts.items():
            holding = self.held[(tag, receiver)]
            holding.copies = max(holding.copies, copies)
        self.arrival_order[(receiver, conversation)] = order

    def observe_shown(self, viewer: str, conversation: str, tags: Iterable[str]) -> None:
        """One snapshot of a conversation as the viewer shows it, its own messages included."""
        self.shown_order[(viewer, conversation)] = [t for t in tags if t in self.sent]

    def observe_acknowledged(self, tag: str, recipients: Iterable[str], at: float) -> None:
        """A sender's snapshot at `at` counted these recipients as having the message."""
        for recipient in recipients:
            self.acked_seen.setdefault((tag, recipient), at)

    # ---- the report ------------------------------------------------------------------
    def fate(self, tag: str, receiver: str) -> str:
        holding = self.held.get((tag, receiver))
        if holding is None:
            return "lost"
        latency = holding.received_at - self.sent[tag].sent_at
        return "delivered" if latency <= self.late_after else "late"

    def out_of_order(self) -> set[tuple[str, str]]:
        """(tag, receiver) pairs held before an earlier message of the same sender."""
        flagged: set[tuple[str, str]] = set()
        for (receiver, _), order in self.arrival_order.items():
            highest: dict[str, int] = {}
            for tag in order:
                sent = self.sent[tag]
                if sent.sequence < highest.get(sent.sender, 0):
                    flagged.add((tag, receiver))
                highest[sent.sender] = max(highest.get(sent.sender, 0), sent.sequence)
        return flagged

    def shown_out_of_send_order(self, tolerance: float = 1.0) -> set[tuple[str, str]]:
        """(tag, viewer) pairs a client shows after a message the lab sent more than
        `tolerance` seconds later, whoever the senders, the viewer included (a conversation
        is shown in the order of the senders' claimed send times: a skewed clock moves its
        messages)."""
        flagged: set[tuple[str, str]] = set()
        for (receiver, _), order in self.shown_order.items():
            latest = float("-inf")
            for tag in order:
                if self.sent[tag].sent_at + tolerance < latest:
                    flagged.add((tag, receiver))
                latest = max(latest, self.sent[tag].sent_at)
        return flagged

    def ran_ahead(self) -> list[dict[str, Any]]:
        out = []
        for (tag, recipient), seen in sorted(self.acked_seen.items()):
            holding = self.held.get((tag, recipient))
            if holding is None or holding.received_at > seen:
                out.append({
                    "message": tag, "recipient": recipient,
                    "delivered_shown_at": rounded(seen - self.sent[tag].sent_at, 3),
                    "held_at": None if holding is None
                    else rounded(holding.received_at - self.sent[tag].sent_at, 3),
                })  # fmt: skip
        return out

    def latencies(self, chat: str | None = None) -> list[float]:
        return sorted(
            holding.received_at - self.sent[tag].sent_at
            for (tag, _), holding in self.held.items()
            if chat is None or self.sent[tag].chat == chat
        )

    def report(self) -> dict[str, Any]:
        fates: dict[str, int] = dict.fromkeys(FATES, 0)
        by_chat: dict[str, dict[str, int]] = {}
        lost: list[dict[str, Any]] = []
        duplicated = 0
        for tag, sent in self.sent.items():
            for receiver in sent.recipients:
                fate = self.fate(tag, receiver)
                fates[fate] += 1
                by_chat.setdefault(sent.chat, dict.fromkeys(FATES, 0))[fate] += 1
                if fate == "lost":
                    lost.append({"message": tag, "from": sent.sender, "to": receiver,
                                 "sent_at": rounded(sent.sent_at, 3)})  # fmt: skip
                holding = self.held.get((tag, receiver))
                if holding is not None and holding.copies > 1:
                    duplicated += 1
        expected = sum(fates.values())
        return {
            "messages_sent": len(self.sent),
            "send_failures": self.send_failures,
            "failed_sends": self.failed_sends[:50],
            "send_answer_s": summary(self.send_answer_s, 3),
            "expected_deliveries": expected,
            "fates": fates,
            "by_chat": by_chat,
            "delivery_ratio": rounded((fates["delivered"] + fates["late"]) / expected)
            if expected
            else None,
            "duplicated": duplicated,
            "out_of_order": len(self.out_of_order()),
            "shown_out_of_send_order": len(self.shown_out_of_send_order()),
            "latency_s": summary(self.latencies(), 3),
            "latency_s_by_chat": {c: summary(self.latencies(c), 3) for c in sorted(by_chat)},
            "ran_ahead_of_evidence": self.ran_ahead(),
            "lost": lost[:200],
        }

    def recovery(self, start: float, end: float | None, targets: set[str]) -> float | None:
        """Seconds from a fault's end until every message sent to or from its targets during
        it (and the first one sent after it) was held; None when that never happened or the
        fault never ended. Times are relative to the same origin as `sent_at`."""
        if end is None:
            return None
        during: list[str] = []
        after: list[str] = []
        for tag, sent in self.sent.items():
            involved = sent.sender in targets or bool(targets & set(sent.recipients))
            if not involved:
                continue
            if start <= sent.sent_at < end:
                during.append(tag)
            elif sent.sent_at >= end and not after:
                after.append(tag)
        held_at = []
        for tag in during + after:
            for receiver in self.sent[tag].recipients:
                holding = self.held.get((tag, receiver))
                if holding is None:
                    return None
                held_at.append(holding.received_at)
        if not held_at:
            return None
        return rounded(max(0.0, max(held_at) - end), 3)
