"""A group's Megolm sessions: ours to send with, the members' to read with, and when ours
is replaced (the rotation policy).

- One outbound session per member per group: we encrypt every frame we send to the group
  with ours (vodozemac `GroupSession`). Its key, at its current index, goes pairwise (Olm)
  to each member who needs it; a member added later gets it at the index of that moment and
  so reads only what follows. A member has it for sure once they acknowledged a message we
  encrypted with it (`confirmed`); until then the key goes along again every `reshare_after`.
- Each member's session reaches us the same way; we read their frames with it (vodozemac
  `InboundGroupSession`, which checks the session's signature and MAC: a tampered message
  does not decrypt). A session belongs to the member whose Olm session delivered its key.
  Every member holds every member's key, so one may pass on another's as theirs: until a
  frame of the session names its owner as its sender (`confirm`: only its creator can make
  its frames), a second member's claim replaces the first; after, it is refused. Otherwise
  a member could make a newcomer refuse another member's messages for good.
- Replays: an (session, message index) read once is never read again (the indexes read are
  kept per session, bounded).
- Rotation (`RotationPolicy`): a new outbound session before the next content frame when a
  member who had ours left or was removed (they must not read what follows), after
  `max_messages` content frames, or when the session is `max_age` old.

Sans-IO: the caller passes the time in; pickles are encrypted with the profile's key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import vodozemac

ROTATE_AFTER_MESSAGES = 100
ROTATE_AFTER_SECONDS = 7 * 24 * 3600.0
"""Why these: Megolm only ratchets forward, so a session's state that leaks (a stolen device,
a memory dump) opens every later message of that session, never an earlier one. Rotation
bounds that exposure to 100 messages or a week, whichever comes first (Matrix's defaults for
the same reason). A rotation costs one Olm message per member in the next envelope (about
0.5 KB each; docs/performance.md has the figures), so with 100 messages it adds under 1 %
to a 50-member group's traffic at one message per member per rotation."""
RESHARE_AFTER = 60.0
"""Seconds before our key goes again, in the next envelope, to a member who has not
confirmed it (the outbox's first re-send comes after as long)."""
MAX_SEEN_INDEXES = 1024
"""Message indexes remembered per inbound session (the newest): far more than a session is
used for before it rotates; an older replay no longer decrypts into anything new (SDS drops
its frame by id) and is refused as unknown-index when the session began later."""
MAX_INBOUND_PER_MEMBER = 8
"""A member's sessions we keep (the newest): their older messages still arriving from a store
decrypt; older sessions are dropped."""
MAX_SEALED_IDS = 512
"""Message ids remembered per outbound session, to learn from acknowledgements who holds it."""
MAX_OWN_SESSIONS = 64
"""Ids of our past outbound sessions, to recognise our own messages echoed back."""


class GroupKeyError(Exception):
    """Base of this module's refusals; a sentence for the log."""


class NoSession(GroupKeyError):
    """A message of a session we do not hold (sent before we joined, or its key is late)."""


class Refused(GroupKeyError):
    """A message that must not be read: tampered, replayed, or from a session's impostor."""


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    max_messages: int = ROTATE_AFTER_MESSAGES
    max_age: float = ROTATE_AFTER_SECONDS
    reshare_after: float = RESHARE_AFTER

    def rotate_reason(self, session: OutboundSession, now: float) -> str | None:
        """Why `session` must be replaced before the next content frame (None: it may stay)."""
        if session.departed:
            return f"{', '.join(sorted(session.departed))[:200]} no longer in the group"
        if session.sent >= self.max_messages:
            return f"{session.sent} messages sent with it"
        if now - session.created_at >= self.max_age:
            return "a week old"
        return None


@dataclass
class OutboundSession:
    session: vodozemac.GroupSession
    created_at: float
    sent: int = 0
    """Content frames encrypted with it."""
    shared_at: dict[str, float] = field(default_factory=dict)
    """Per member (chat key), when its key last went to them."""
    confirmed: set[str] = field(default_factory=set)
    """Members who acknowledged a message encrypted with it: they hold it."""
    sealed: dict[str, None] = field(default_factory=dict)
    """Ids of the frames encrypted with it (the newest MAX_SEALED_IDS)."""
    departed: set[str] = field(default_factory=set)
    """Members who had its key and are gone: it must not be used for content any more."""

    @property
    def id(self) -> str:
        return self.session.session_id

    def needs_key(self, members: Iterable[str], now: float, reshare_after: float) -> list[str]:
        """Members to send its key to with the next envelope."""
        return sorted(
            m
            for m in members
            if m not in self.confirmed
            and (m not in self.shared_at or now - self.shared_at[m] >= reshare_after)
        )


@dataclass
class InboundSession:
    session: vodozemac.InboundGroupSession
    owner: str
    """The member (chat key) whose Olm session delivered its key."""
    owner_identity_key: bytes
    received_at: float
    seen: dict[int, None] = field(default_factory=dict)
    confirmed: bool = False
    """A frame of it named `owner` as its sender: the owner is right (see the module)."""

    @property
    def id(self) -> str:
        return self.session.session_id


@dataclass(frozen=True, slots=True)
class Opened:
    owner: str
    owner_identity_key: bytes
    plaintext: bytes
    index: int


class GroupKeys:
    """The Megolm sessions of one group."""

    def __init__(self, group_id: str, own: str, policy: RotationPolicy) -> None:
        self.group_id = group_id
        self.own = own
        self.policy = policy
        self.outbound: OutboundSession | None = None
        self.own_sessions: dict[str, None] = {}
        self.inbound: dict[str, InboundSession] = {}
        self.known_to: set[str] = set()
        """Members who confirmed one of our sessions: they know we are a member (our shares
        to them need not prove it again)."""
        self.farewell: set[str] = set()
        """Frames we may still seal after we left: our own `left` change."""
        self.changed: set[str] = set()
        """Session ids whose state moved since the last `take_changed` ('' for our own list)."""
        self.dropped: set[str] = set()

    # ---- sending -----------------------------------------------------------------------------
    def session_for(self, *, content: bool, now: float) -> tuple[OutboundSession, str | None]:
        """The session to encrypt the next frame with, and why it is new (None: it is not).
        Content frames get a new one when the policy says so; sync frames use the current one
        (they carry no content; a member who just left may still read our acknowledgements)."""
        current = self.outbound
        reason: str | None = "the first message" if current is None else None
        if current is not None and content:
            reason = self.policy.rotate_reason(current, now)
        if current is None or reason is not None:
            current = self._new_session(now)
        return current, reason

    def _new_session(self, now: float) -> OutboundSession:
        if self.outbound is not None:
            self.dropped.add(self.outbound.id)  # its row goes; its id stays among ours
        session = OutboundSession(vodozemac.GroupSession(), now)
        self.outbound = session
        self.own_sessions[session.id] = None
        while len(self.own_sessions) > MAX_OWN_SESSIONS:
            del self.own_sessions[next(iter(self.own_sessions))]
        self.changed.update((session.id, ""))
        return session

    def encrypt(self, session: OutboundSession, message_id: str, plaintext: bytes, *,
                content: bool) -> bytes:  # fmt: skip
        ciphertext = session.session.encrypt(plaintext).to_bytes()
        if content:
            session.sent += 1
            session.sealed[message_id] = None
            while len(session.sealed) > MAX_SEALED_IDS:
                del session.sealed[next(iter(session.sealed))]
        self.changed.add(session.id)
        return ciphertext

    def shared(self, session: OutboundSession, members: Iterable[str], now: float) -> None:
        for member in members:
            session.shared_at[member] = now
        self.changed.add(session.id)

    def acknowledged(self, member: str, message_id: str) -> None:
        """A member acknowledged one of our frames: they hold the session it was sealed in."""
        session = self.outbound
        if session is not None and message_id in session.sealed and member not in session.confirmed:
            session.confirmed.add(member)
            self.changed.add(session.id)
            if member not in self.known_to:
                self.known_to.add(member)
                self.changed.add("")

    def rejoined(self) -> None:
        """We are a member again (a new invitation): every member needs our proof again."""
        self.known_to.clear()
        self.farewell.clear()
        self.changed.add("")

    def leaving(self, message_id: str) -> None:
        """We left; the frame that says so may still go out."""
        self.farewell.add(message_id)
        self.changed.add("")

    def departed(self, members: Iterable[str]) -> None:
        """These members left or were removed: our session must not carry content past them."""
        session = self.outbound
        if session is None:
            return
        gone = {m for m in members if m in session.shared_at or m in session.confirmed}
        if gone - session.departed:
            session.departed |= gone
            self.changed.add(session.id)

    def is_own(self, session_id: str) -> bool:
        return session_id in self.own_sessions

    # ---- receiving ---------------------------------------------------------------------------
    def add_inbound(
        self, session_id: str, session_key: str, owner: str, owner_identity_key: bytes, now: float
    ) -> bool:
        """A member's session key, delivered by their Olm session; False when we hold it."""
        known = self.inbound.get(session_id)
        if known is not None:
            if known.owner == owner:
                return False
            if known.confirmed:
                raise Refused(f"a session key that {known.owner[:16]}… already owns")
        if session_id in self.own_sessions:
            raise Refused("a session key claiming one of our own sessions")
        try:
            session = vodozemac.InboundGroupSession(vodozemac.SessionKey(session_key))
        except (vodozemac.SessionKeyDecodeException, ValueError):
            raise Refused("a session key that does not decode") from None
        if session.session_id != session_id:
            raise Refused("a session key for another session than it names")
        # A replaced claim starts afresh: no frame it decrypted was taken (none named it).
        self.inbound[session_id] = InboundSession(session, owner, owner_identity_key, now)
        self.changed.add(session_id)
        self._bound(owner)
        return True

    def _bound(self, owner: str) -> None:
        theirs = sorted(
            (s for s in self.inbound.values() if s.owner == owner), key=lambda s: s.received_at
        )
        for old in theirs[:-MAX_INBOUND_PER_MEMBER]:
            del self.inbound[old.id]
            self.dropped.add(old.id)

    def confirm(self, session_id: str, sender: str) -> None:
        """A frame of this session, authenticated by it, names `sender`: if that is its
        owner, the ownership is settled."""
        inbound = self.inbound.get(session_id)
        if inbound is not None and not inbound.confirmed and inbound.owner == sender:
            inbound.confirmed = True
            self.changed.add(session_id)

    def decrypt(self, session_id: str, ciphertext: bytes) -> Opened:
        inbound = self.inbound.get(session_id)
        if inbound is None:
            raise NoSession("a group message of a session we do not hold")
        try:
            message = vodozemac.MegolmMessage.from_bytes(ciphertext)
        except vodozemac.DecodeException:
            raise Refused("a group message whose ciphertext is malformed") from None
        index = message.message_index()
        if index in inbound.seen:
            raise Refused("a replayed group message")
        try:
            decrypted = inbound.session.decrypt(message)
        except vodozemac.MegolmDecryptionException as exc:
            if "unknown message index" in str(exc):
                raise NoSession("a group message from before we had its session") from None
            raise Refused(
                "a group message that does not decrypt: tampered with, or not from its "
                "session's owner"
            ) from None
        inbound.seen[index] = None
        while len(inbound.seen) > MAX_SEEN_INDEXES:
            del inbound.seen[next(iter(inbound.seen))]
        self.changed.add(session_id)
        return Opened(inbound.owner, inbound.owner_identity_key, bytes(decrypted.plaintext), index)

    # ---- persistence -------------------------------------------------------------------------
    def take_changed(self) -> tuple[set[str], set[str]]:
        changed, dropped = self.changed, self.dropped
        self.changed, self.dropped = set(), set()
        return changed, dropped

    def row(self, session_id: str, key: bytes) -> tuple[str, dict[str, Any]] | None:
        """(owner, state) of a session as the profile keeps it; None if it is gone. The
        session id '' is our list of own session ids."""
        if session_id == "":
            return self.own, {
                "own_sessions": list(self.own_sessions),
                "known_to": sorted(self.known_to),
                "farewell": sorted(self.farewell),
            }
        out = self.outbound
        if out is not None and out.id == session_id:
            return self.own, {
                "outbound": out.session.pickle(key),
                "created_at": out.created_at,
                "sent": out.sent,
                "shared_at": out.shared_at,
                "confirmed": sorted(out.confirmed),
                "sealed": list(out.sealed),
                "departed": sorted(out.departed),
            }
        inbound = self.inbound.get(session_id)
        if inbound is None:
            return None
        return inbound.owner, {
            "inbound": inbound.session.pickle(key),
            "owner_identity_key": inbound.owner_identity_key.hex(),
            "received_at": inbound.received_at,
            "seen": list(inbound.seen),
            "confirmed": inbound.confirmed,
        }

    def restore(self, session_id: str, owner: str, state: dict[str, Any], key: bytes) -> None:
        """One row as `row` wrote it (a row of an older own session is dropped)."""
        if "own_sessions" in state:
            self.own_sessions.update(dict.fromkeys(str(s) for s in state["own_sessions"]))
            self.known_to.update(str(m) for m in state.get("known_to", []))
            self.farewell.update(str(m) for m in state.get("farewell", []))
        elif "outbound" in state:
            session = vodozemac.GroupSession.from_pickle(state["outbound"], key)
            restored = OutboundSession(
                session,
                float(state["created_at"]),
                int(state["sent"]),
                {str(k): float(v) for k, v in state["shared_at"].items()},
                {str(m) for m in state["confirmed"]},
                dict.fromkeys(str(m) for m in state["sealed"]),
                {str(m) for m in state["departed"]},
            )
            if self.outbound is None or restored.created_at >= self.outbound.created_at:
                if self.outbound is not None:
                    self.dropped.add(self.outbound.id)
                self.outbound = restored
            else:
                self.dropped.add(restored.id)
            self.own_sessions[restored.id] = None
        else:
            inbound = InboundSession(
                vodozemac.InboundGroupSession.from_pickle(state["inbound"], key),
                owner,
                bytes.fromhex(state["owner_identity_key"]),
                float(state["received_at"]),
                dict.fromkeys(int(i) for i in state["seen"]),
                bool(state.get("confirmed", True)),
            )
            self.inbound[session_id] = inbound
