"""What the messenger reads from the profile when it starts, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from chat.identity import Identity
from chat.identity_store import ensure_identity
from chat.messenger.config import RECEIVED_LOADED
from chat.messenger.olm import SavedOlm
from chat.messenger.strangers import DROPPED_KEY
from storage.aio import AsyncStore
from storage.repositories.conversations import Conversation
from storage.repositories.groups import StoredInvite, StoredSession
from storage.repositories.messages import StoredMessage
from storage.repositories.outbox import OutboxEntry
from storage.repositories.recipients import Recipient
from storage.repositories.sessions import StoredFlow
from storage.store import Store


@dataclass
class SavedProfile:
    identity: Identity
    """Created on first use; its fallback key rotated when due."""
    olm: SavedOlm
    flows: list[StoredFlow]
    verified: set[str]
    outbox: list[tuple[OutboxEntry, StoredMessage | None]]
    """Each outbox row with its message (None if the message row is gone)."""
    handled: list[bytes]
    """Hashes of messages handled lately (the newest RECEIVED_LOADED)."""
    conversations: list[Conversation]
    stranger_requests_dropped: int
    """Requests of strangers dropped by spam protection so far."""
    recipients: dict[int, list[Recipient]]
    """Per outbox entry (message row id): whom it went to, and who acknowledged it."""
    group_logs: dict[str, list[bytes]]
    """Each group's membership log (signed changes), by group id."""
    group_sessions: list[StoredSession]
    group_invites: list[StoredInvite]


async def read_profile(db: AsyncStore, now: float) -> SavedProfile:
    def read(store: Store) -> SavedProfile:
        identity = ensure_identity(store, now)
        outbox = [(e, store.messages.get(e.message)) for e in store.outbox.all()]
        return SavedProfile(
            identity=identity,
            olm=SavedOlm(store.olm_sessions.load(), store.olm_sessions.legacy()),
            flows=store.contact_flows.all(),
            verified={c.chat_key for c in store.contacts.all() if c.verified},
            outbox=outbox,
            handled=store.received_hashes.live(now=int(now * 1000), limit=RECEIVED_LOADED),
            conversations=store.conversations.recent(10_000),
            stranger_requests_dropped=int(store.meta.get(DROPPED_KEY) or 0),
            recipients=store.recipients.of([e.message for e, _ in outbox]),
            group_logs=store.groups.all_changes(),
            group_sessions=store.groups.sessions(),
            group_invites=store.group_invites.all(),
        )

    return await db.run(read)
