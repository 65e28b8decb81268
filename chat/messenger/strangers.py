"""The budget for strangers (chat/request_budget.py) applied to our contact-request partition.

Who is a stranger is decided from the envelope, before anything is decrypted: its sender's
identity key belongs to someone we chose (a flow in chat.contacts.OURS: we asked them, or
we accepted them) or it does not. Contacts pass freely and are handled first
(receive.py's lanes); a stranger's message spends a token or is dropped unopened.

A stranger's request we took in is kept within the cap; a request dropped to make room is
forgotten entirely (its flow, their link, their Olm sessions and replay guard), so a later
copy of it is simply their request again. The drop count is kept in the profile and told
to the faces (`StrangerRequestsDropped`, the health view) at most every few seconds.
"""

from __future__ import annotations

import logging

from chat import events as ev
from chat.contacts import OURS, STRANGERS, ContactRequest, ContactRequests, RequestEvent
from chat.messenger.contact_book import ContactBook
from chat.messenger.context import MessengerContext
from chat.messenger.olm import OlmCrypto
from chat.request_budget import StrangerBudget
from storage.store import Store

log = logging.getLogger(__name__)

DROPPED_KEY = "stranger_requests_dropped"
"""Profile meta: requests of strangers dropped since the profile began."""


class Strangers:
    def __init__(
        self,
        ctx: MessengerContext,
        budget: StrangerBudget,
        contacts: ContactBook,
        requests: ContactRequests,
        olm: OlmCrypto,
    ) -> None:
        self._ctx = ctx
        self.budget = budget
        self._contacts = contacts
        self._requests = requests
        self._olm = olm

    def restore(self, flows: list[ContactRequest], dropped: int) -> list[str]:
        """Hold the strangers' requests of the profile, oldest first; returns those beyond
        the cap (already forgotten here: delete them from the profile)."""
        self.budget.restore(dropped)
        waiting = [f for f in flows if f.state in STRANGERS]
        waiting.sort(key=lambda f: f.history[-1].at if f.history else 0.0)
        over: list[str] = []
        for flow in waiting:
            over += self.budget.hold(flow.chat_key, is_open=flow.open)
        self._forget(over)
        return over

    # ---- before opening ----------------------------------------------------------------------
    def chosen(self, identity_key: bytes) -> bool:
        """Whether this identity key is someone we chose (asked, or accepted)."""
        chat_key = self._contacts.by_identity_key.get(identity_key)
        flow = self._requests.find(chat_key) if chat_key is not None else None
        return flow is not None and flow.state in OURS

    def admit(self, identity_key: bytes) -> bool:
        """May this sender's message be opened now? Contacts always; strangers within the
        budget (a drop is counted)."""
        if self.chosen(identity_key):
            return True
        return self.budget.admit(self._ctx.clock())

    def shed(self) -> None:
        """A stranger's message was shed, unopened, from the full receive queue."""
        self.budget.shed()
        self._ctx.wake_scheduler()

    # ---- after a step of a flow --------------------------------------------------------------
    def moved(self, chat_key: str, event: RequestEvent) -> list[str]:
        """Keep the budget's list in step with the flow: a stranger's new request is kept
        (newest), one they closed moves among the closed ones, an answered one leaves.
        Returns the requests dropped to make room (forgotten here: delete them from the
        profile with this step)."""
        flow = self._requests.find(chat_key)
        if flow is None or flow.state not in STRANGERS:
            self.budget.release(chat_key)
            return []
        if event is RequestEvent.RECEIVE_COPY and self.budget.holds(chat_key):
            return []  # a copy of a request we keep: its place does not change
        dropped = self.budget.hold(chat_key, is_open=flow.open)
        self._forget(dropped)
        if dropped:
            self._ctx.wake_scheduler()
        return dropped

    def _forget(self, chat_keys: list[str]) -> None:
        for chat_key in chat_keys:
            link = self._contacts.forget(chat_key)
            self._requests.forget(chat_key)
            if link is not None:
                self._olm.forget(link.identity_key)
        if chat_keys:
            log.info("dropped %d requests of strangers to stay within the cap", len(chat_keys))

    # ---- telling the user (a timed feature) --------------------------------------------------
    def next_wakeup(self) -> float | None:
        return self.budget.next_report_at()

    async def run_due(self, now: float) -> None:
        total = self.budget.report(now)
        if total is None:
            return
        await self.save_count()
        log.warning(
            "spam protection: %d contact requests of strangers dropped (%s since start)",
            total,
            ", ".join(f"{r.value} {n}" for r, n in self.budget.dropped_by_reason.items()),
        )
        self._ctx.emit(ev.StrangerRequestsDropped(dropped=total, held=len(self.budget)))

    async def save_count(self) -> None:
        total = str(self.budget.dropped)

        def save(store: Store) -> None:
            store.meta.set(DROPPED_KEY, total)

        await self._ctx.db.run(save)
