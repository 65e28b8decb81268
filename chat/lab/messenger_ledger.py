"""The messenger mode's per-message ledger: what each sender's messenger showed (queued,
sent, stored, delivered, failed, each with the simulated time it first showed it), when the
recipient's messenger held the message, and when a store node held the copy the sender's
`stored` step names.

The fates, duplicates, order and latency come from the live lab's ledger (chat/lab/fates.py).
On top, the evidence check: a message ran ahead of its evidence when its sender showed it
`delivered` before the recipient held it (or the recipient never did), or `stored` before
any store node held the copy its evidence names.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from chat.lab.fates import FateLedger
from chat.lab.stats import rounded, summary

STATES = ("queued", "sent", "stored", "delivered", "failed")
DIRECT = "direct"


@dataclass
class Tracked:
    tag: str
    sender: str
    recipient: str
    chat_id: str
    sent_at: float
    states: dict[str, float] = field(default_factory=dict)
    """State -> when the sender's messenger first showed it."""
    final: str = "queued"
    reason: str | None = None
    store_held_at: float | None = None
    """When a store node first held the copy the `stored` step names (None: none did)."""


class MessengerLedger:
    def __init__(self, late_after: float, origin: float = 0.0) -> None:
        self.fates = FateLedger(late_after)
        self.origin = origin
        """Reported times are seconds after this (the start of the traffic)."""
        self.messages: dict[str, Tracked] = {}
        self.by_message_id: dict[str, str] = {}
        self._held: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
        """(receiver, chat) -> (tag, held at) in the receiver's order."""

    # ---- what the run observes -------------------------------------------------------------
    def sent(
        self, tag: str, sender: str, recipient: str, chat_id: str, message_id: str, at: float
    ) -> None:
        self.messages[tag] = Tracked(tag, sender, recipient, chat_id, at)
        self.by_message_id[message_id] = tag
        self.fates.record_send(tag, sender, DIRECT, chat_id, [recipient], at)
        self.state(message_id, "queued", at)

    def state(self, message_id: str, state: str, at: float, reason: str | None = None) -> None:
        tag = self.by_message_id.get(message_id)
        if tag is None:
            return
        tracked = self.messages[tag]
        tracked.states.setdefault(state, at)
        tracked.final, tracked.reason = state, reason
        if state == "delivered":
            self.fates.observe_acknowledged(tag, [tracked.recipient], at)

    def held(self, tag: str, receiver: str, chat_id: str, at: float) -> None:
        if tag in self.messages:
            self._held[(receiver, chat_id)].append((tag, at))

    def store_held(self, tag: str, at: float | None) -> None:
        self.messages[tag].store_held_at = at

    # ---- checks ----------------------------------------------------------------------------
    def held_at(self, tag: str) -> float | None:
        tracked = self.messages[tag]
        times = [
            at for t, at in self._held.get((tracked.recipient, tracked.chat_id), ()) if t == tag
        ]
        return min(times) if times else None

    def ran_ahead(self) -> dict[str, list[dict[str, Any]]]:
        delivered: list[dict[str, Any]] = []
        stored: list[dict[str, Any]] = []
        for tag, tracked in self.messages.items():
            shown = tracked.states.get("delivered")
            held = self.held_at(tag)
            if shown is not None and (held is None or held > shown):
                delivered.append(self._flag(tracked, "delivered", shown, held))
            shown = tracked.states.get("stored")
            if shown is not None and (
                tracked.store_held_at is None or tracked.store_held_at > shown
            ):
                stored.append(self._flag(tracked, "stored", shown, tracked.store_held_at))
        return {"delivered_before_held": delivered, "stored_before_store_held": stored}

    def _flag(
        self, tracked: Tracked, state: str, shown: float, held: float | None
    ) -> dict[str, Any]:
        return {
            "message": tracked.tag,
            "from": tracked.sender,
            "to": tracked.recipient,
            f"{state}_shown_at": self._time(shown),
            "held_at": None if held is None else self._time(held),
        }

    def _time(self, at: float) -> float:
        return rounded(at - self.origin, 3)

    # ---- the report ------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        for (receiver, chat_id), items in self._held.items():
            # Messages held at one instant count as in order: their order within the instant
            # follows their hashes (store answers), which differ from run to run.
            in_order = sorted(items, key=lambda item: (item[1], item[0]))
            self.fates.observe_incoming(receiver, chat_id, in_order)
        fates = self.fates.report()
        fates.pop("by_chat", None)
        fates.pop("latency_s_by_chat", None)
        for lost in fates["lost"]:
            lost["sent_at"] = self._time(lost["sent_at"])
        finals = dict.fromkeys(STATES, 0)
        seconds_to: dict[str, list[float]] = {state: [] for state in STATES[1:]}
        not_delivered = []
        for tag, tracked in self.messages.items():
            finals[tracked.final] = finals.get(tracked.final, 0) + 1
            for state, at in tracked.states.items():
                if state in seconds_to:
                    seconds_to[state].append(at - tracked.sent_at)
            if tracked.final != "delivered":
                held = self.held_at(tag)
                not_delivered.append({
                    "message": tag, "from": tracked.sender, "to": tracked.recipient,
                    "sent_at": self._time(tracked.sent_at), "state": tracked.final,
                    "reason": tracked.reason,
                    "held_by_recipient_at": None if held is None else self._time(held),
                })  # fmt: skip
        ahead = self.ran_ahead()
        fates["ran_ahead_of_evidence"] = ahead["delivered_before_held"]
        return {
            "fates": fates,
            "sender_states": {
                "final": finals,
                "seconds_to": {state: summary(times, 3) for state, times in seconds_to.items()},
            },
            "evidence": {
                "delivered_before_held": len(ahead["delivered_before_held"]),
                "stored_before_store_held": len(ahead["stored_before_store_held"]),
                "violations": ahead["delivered_before_held"] + ahead["stored_before_store_held"],
            },
            "not_delivered": not_delivered[:200],
            "not_delivered_count": len(not_delivered),
        }
