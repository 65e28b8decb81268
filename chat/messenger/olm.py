"""Pairwise Olm: the crypto of contact requests and of 1:1 conversations.

`OlmCrypto` holds the profile's Olm sessions (chat/direct.py, sans-IO) for everyone: the
contact-request flows seal and open through it directly, and every 1:1 conversation plugs
it into the pipeline as a `PairwiseOlm` bound to its contact. The envelope names the
sender's identity key, so opening needs no conversation: the session decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chat import events as ev
from chat.direct import (
    DirectError,
    DirectSessions,
    Envelope,
    Opened,
    SessionChanges,
    VerifiedRequest,
)
from chat.identity import ContactLink, Identity
from chat.messenger.contact_book import ContactBook
from chat.messenger.context import MessengerContext
from chat.messenger.conversation import OpenRefused, SealFailed, Unsealed
from chat.proto import direct_pb2
from chat.waku.message import WakuMessage

NOT_A_CONTACT = "the recipient is not a contact any more"


@dataclass(frozen=True)
class SavedOlm:
    """The Olm sessions as the profile keeps them: a row per peer, or (written by versions
    before per-peer rows) one whole structure."""

    rows: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    legacy: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class OlmChanges:
    """What to write: the peers whose sessions moved, and whether the whole-structure row
    of an older version is still to be deleted (it is, with the first save)."""

    sessions: SessionChanges
    drop_legacy: bool

    def __bool__(self) -> bool:
        return bool(self.sessions) or self.drop_legacy


class OlmCrypto:
    name = "Olm"

    def __init__(self, ctx: MessengerContext) -> None:
        self._ctx = ctx
        self.sessions: DirectSessions | None = None
        """None until the messenger has loaded the profile."""
        self._drop_legacy = False

    def load(self, identity: Identity, saved: SavedOlm) -> None:
        key = self._ctx.pickle_key
        if saved.rows or not saved.legacy:
            self.sessions = DirectSessions.from_rows(identity, saved.rows, key)
        else:  # moved to per-peer rows by the first save
            self.sessions = DirectSessions.from_pickle(identity, saved.legacy, key)
            self.sessions.mark_all_changed()
        self._drop_legacy = saved.legacy is not None

    @property
    def _sessions(self) -> DirectSessions:
        if self.sessions is None:
            raise ev.NotPossible("the messenger is not running")
        return self.sessions

    def seal(self, their_identity_key: bytes, payload: direct_pb2.DirectPayload) -> Envelope:
        """In the session we hold with them; raises DirectError when there is none."""
        return self._sessions.seal(their_identity_key, payload)

    def seal_to(self, link: ContactLink, payload: direct_pb2.DirectPayload) -> Envelope:
        """In our session with them, or a new one from their link (a pre-key message)."""
        sessions = self._sessions
        if sessions.has_session(link.identity_key):
            return sessions.seal(link.identity_key, payload)
        return sessions.seal_first(link, payload)

    def open(self, message: WakuMessage) -> Opened | None:
        """None for our own message (echoed by relay or listed by a store)."""
        try:
            envelope = Envelope.decode(message.payload)
        except DirectError as exc:
            raise OpenRefused(f"{exc} on {message.content_topic}") from None
        if envelope.sender_identity_key == self._ctx.me.identity_key:
            return None
        try:
            return self._sessions.open(envelope)
        except DirectError as exc:
            raise OpenRefused(str(exc)) from None

    def open_envelope(self, envelope: Envelope) -> Opened:
        """An Olm envelope that came inside something else (a group envelope's share)."""
        try:
            return self._sessions.open(envelope)
        except DirectError as exc:
            raise OpenRefused(str(exc)) from None

    def vouch(self, their_identity_key: bytes) -> None:
        """A sender we know by other means (a group member): kept, not evicted as a stranger."""
        self._sessions.vouch(their_identity_key)

    def verify_request(self, opened: Opened) -> VerifiedRequest:
        """A contact request's link checked against the Olm-proven sender (DirectError if not)."""
        return self._sessions.verify_request(opened)

    def forget(self, their_identity_key: bytes) -> None:
        """Drop a peer's sessions and replay guard (a stranger whose request was dropped)."""
        self._sessions.forget(their_identity_key)

    def take_changes(self) -> OlmChanges:
        """The sessions that moved since the last call, to be written now."""
        drop_legacy, self._drop_legacy = self._drop_legacy, False
        return OlmChanges(self._sessions.take_changes(self._ctx.pickle_key), drop_legacy)

    def changes_not_saved(self, changes: OlmChanges) -> None:
        """Writing `changes` failed: they are written with the next save instead."""
        self._sessions.changes_not_saved(changes.sessions)
        self._drop_legacy |= changes.drop_legacy


class PairwiseOlm:
    """A 1:1 conversation's crypto: Olm with its one contact."""

    name = OlmCrypto.name

    def __init__(self, olm: OlmCrypto, contacts: ContactBook, peer: str) -> None:
        self._olm = olm
        self._contacts = contacts
        self._peer = peer

    def seal(self, frame: bytes) -> bytes:
        link = self._contacts.link(self._peer)
        if link is None:
            raise SealFailed(NOT_A_CONTACT, permanent=True)
        try:
            envelope = self._olm.seal(link.identity_key, direct_pb2.DirectPayload(sds_frame=frame))
        except DirectError as exc:
            raise SealFailed(str(exc), permanent=False) from None
        return envelope.encode()

    def open(self, message: WakuMessage) -> Unsealed | None:
        opened = self._olm.open(message)
        if opened is None:
            return None
        is_frame = opened.payload.WhichOneof("body") == "sds_frame"
        frame = opened.payload.sds_frame if is_frame else None
        return Unsealed(opened.sender_identity_key, frame, opened)
