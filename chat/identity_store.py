"""Keeping a profile's Identity in its encrypted database.

The Olm account goes through the identity repository (pickled with a key derived from the
database key); the fallback key's public half and its creation time, which the contact link
needs, are profile facts in the meta table.
"""

from __future__ import annotations

from chat.errors import UserError
from chat.identity import Identity
from storage.store import Store

FALLBACK_KEY = "fallback_key"
FALLBACK_CREATED_AT = "fallback_created_at"


def save_identity(store: Store, identity: Identity, now_ms: int) -> None:
    with store.db.transaction():
        store.identity.save(identity.account, chat_key=identity.chat_key_text, now=now_ms)
        store.meta.set(FALLBACK_KEY, identity.fallback_key.hex())
        store.meta.set(FALLBACK_CREATED_AT, repr(identity.fallback_created_at))
        store.meta.set("display_name", identity.display_name)


def load_identity(store: Store) -> Identity:
    account = store.identity.load()
    fallback = store.meta.get(FALLBACK_KEY)
    created = store.meta.get(FALLBACK_CREATED_AT)
    if account is None or fallback is None or created is None:
        raise UserError("this profile has no chat identity; create the profile again")
    return Identity(account, store.meta.display_name, bytes.fromhex(fallback), float(created))


def ensure_identity(store: Store, now: float) -> Identity:
    """The profile's identity, created on first use and with its fallback key kept fresh."""
    if store.identity.load() is None:
        identity = Identity.create(store.meta.display_name or "unnamed", now)
        save_identity(store, identity, int(now * 1000))
        return identity
    identity = load_identity(store)
    if identity.maybe_rotate_fallback(now):
        save_identity(store, identity, int(now * 1000))
    return identity
