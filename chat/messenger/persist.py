"""Saving the state that sending and receiving move.

Two rules, and why:

- Before the wire: anything sealed with a ratchet's new state leaves only after that state
  is committed (`save_crypto_now`), so a crash never reuses a message key. The caller's own
  rows (an outbox entry's attempt count, a request flow) join the same transaction.
- Receive-side state in batches: the SDS logs and Olm sessions are whole-structure pickles,
  so writing them per received message costs O(history) each time. `save_later` marks what
  moved and the writer saves it within SAVE_DELAY (it is a timed feature of the scheduler).
  A crash in between loses nothing that matters: a message decrypted again after a restart
  (fetched from store) still decrypts, and duplicates are recognised by message id.

The hashes of messages handled since the last save are written with the Olm sessions, so
after a crash a message is either handled and remembered, or neither.

A conversation kind whose crypto has state of its own (a group's Megolm sessions) registers
it as a `CryptoState` (`add_state`): it is written in the same transactions as the Olm
sessions, before the wire and in the batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from chat.messenger.channels import SdsChannels
from chat.messenger.config import RECEIVED_KEPT_FOR, SAVE_DELAY
from chat.messenger.context import MessengerContext
from chat.messenger.olm import OlmChanges, OlmCrypto
from storage.store import Store


class CryptoState(Protocol):
    """A kind's crypto state, saved with the Olm sessions."""

    def take_changes(self) -> Any:
        """What moved since the last call (falsy: nothing), to be written now."""
        ...

    def write_changes(self, store: Store, changes: Any, now_ms: int) -> None:
        """Write `changes` (inside the writer's transaction)."""
        ...

    def changes_not_saved(self, changes: Any) -> None:
        """Writing `changes` failed: they are written with the next save instead."""
        ...


class StateWriter:
    def __init__(self, ctx: MessengerContext, olm: OlmCrypto, channels: SdsChannels) -> None:
        self._ctx = ctx
        self._olm = olm
        self._channels = channels
        self._states: list[CryptoState] = []
        self._channels_moved: set[str] = set()
        self._handled: list[bytes] = []
        """Hashes of messages handled since the last save of the Olm sessions."""
        self._flush_at: float | None = None

    def add_state(self, state: CryptoState) -> None:
        self._states.append(state)

    def _take_states(self) -> list[tuple[CryptoState, Any]]:
        return [(state, state.take_changes()) for state in self._states]

    def handled(self, msg_hash: bytes) -> None:
        """A received message was taken in (whatever becomes of it): remember its hash."""
        self._handled.append(msg_hash)
        self.save_later()

    def save_later(self, *, crypto: bool = False, channel: str | None = None) -> None:
        """Save within SAVE_DELAY: the crypto state and/or this conversation's SDS channel
        (and the handled hashes in any case). `crypto`: the Olm sessions moved; they mark
        which peers' rows to write themselves, so this only makes sure a save comes."""
        if channel is not None:
            self._channels_moved.add(channel)
        if self._flush_at is None:
            self._flush_at = self._ctx.clock() + SAVE_DELAY
            self._ctx.wake_scheduler()

    async def save_crypto_now(self, also: Callable[[Store], None] | None = None) -> None:
        """The Olm sessions that moved (and `also`, in the same transaction) now: before
        anything sealed with the ratchet's new state leaves."""
        changes = self._olm.take_changes()
        states = self._take_states()
        now_ms = self._ctx.now_ms()
        handled = self._take_handled()

        def save(store: Store) -> None:
            with store.db.transaction():
                if also is not None:
                    also(store)
                write_ratchet(store, changes, now_ms, handled)
                _write_states(store, states, now_ms)

        await self._write(save, changes, handled, states)

    def _take_handled(self) -> list[bytes]:
        handled, self._handled = self._handled, []
        return handled

    async def _write(
        self,
        save: Callable[[Store], None],
        changes: OlmChanges,
        handled: list[bytes],
        states: list[tuple[CryptoState, Any]],
    ) -> None:
        """Run `save`; if it fails, what it was to write is written with the next save."""
        try:
            await self._ctx.db.run(save)
        except BaseException:
            self._olm.changes_not_saved(changes)
            for state, moved in states:
                if moved:
                    state.changes_not_saved(moved)
            self._handled[:0] = handled
            raise

    async def flush(self) -> None:
        self._flush_at = None
        now = self._ctx.clock()
        states = [self._channels.state_row(c, now) for c in self._channels_moved]
        self._channels_moved.clear()
        changes = self._olm.take_changes()
        crypto = self._take_states()
        handled = self._take_handled()
        now_ms = self._ctx.now_ms()

        def save(store: Store) -> None:
            with store.db.transaction():
                for state in states:
                    store.sds_channels.save(state)
                write_ratchet(store, changes, now_ms, handled)
                _write_states(store, crypto, now_ms)

        if states or changes or handled or any(moved for _, moved in crypto):
            await self._write(save, changes, handled, crypto)

    # ---- the timed feature -------------------------------------------------------------------
    def next_wakeup(self) -> float | None:
        return self._flush_at

    async def run_due(self, now: float) -> None:
        if self._flush_at is not None and self._flush_at <= now:
            await self.flush()


def write_ratchet(store: Store, changes: OlmChanges, now_ms: int, handled: list[bytes]) -> None:
    """The Olm sessions that moved together with the hashes of the messages they decrypted
    since the last save: a crash must leave a message either remembered as handled or
    decryptable."""
    store.olm_sessions.save(changes.sessions.rows, changes.sessions.deleted, now=now_ms)
    if changes.drop_legacy:
        store.olm_sessions.delete_legacy()
    write_handled(store, now_ms, handled)


def _write_states(store: Store, states: list[tuple[CryptoState, Any]], now_ms: int) -> None:
    for state, moved in states:
        if moved:
            state.write_changes(store, moved, now_ms)


def write_handled(store: Store, now_ms: int, handled: list[bytes]) -> None:
    if handled:
        store.received_hashes.add(handled, expires_at=now_ms + RECEIVED_KEPT_FOR * 1000)
        store.received_hashes.expire(now=now_ms)
