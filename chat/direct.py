"""1:1 conversations: topics, the Olm envelope, and the sessions behind it.

- A conversation between two chat keys has one id, derived from the pair (order-free), and
  one content topic on shard 0. Contact requests go to a partitioned topic chosen by the
  recipient's chat key, so a client listens to one partition, not to everyone's requests.
- Every payload is encrypted with Olm (the Double Ratchet). The envelope names the sender's
  Curve25519 identity key so the receiver can pick the session; decryption proves it.
- A chat key is bound to an identity key only by a signed contact link. A contact request
  carries the sender's link, and is accepted only when the link's identity key is the key
  that decrypted it: the sender authenticated by Olm is the sender the link names.

Sans-IO: nothing here sends or stores; sessions are pickled for the profile DB.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import vodozemac

from chat.identity import ContactLink, Identity, IdentityError, sanitize_display_text
from chat.proto import direct_pb2
from chat.waku.protowire import parse

ENVELOPE_VERSION = 1
CONTACT_REQUEST_PARTITIONS = 32
MAX_SESSIONS_PER_CONTACT = 4
MAX_UNVERIFIED_SENDERS = 32
"""Senders who opened sessions with us that no accepted request vouches for yet."""
MAX_INBOUND_IDS_PER_CONTACT = 64
MAX_INBOUND_ID_SENDERS = 1024
"""Bounds of the replay guard. A forgotten id is safe again once its fallback key is gone
(two rotation periods, see chat/identity.py)."""
MAX_INTRO_LENGTH = 1000
"""Characters of a request's intro, as shown (after cleaning); a longer one is refused when
sent and cut when received (only a modified client sends one)."""
PICKLE_VERSION = 2
"""The whole-structure format (`pickle`), kept by profiles before per-peer rows."""
ROW_VERSION = 1
"""The per-peer row format (`take_changes`)."""
OLM_PRE_KEY, OLM_NORMAL = 0, 1


class DirectError(ValueError):
    """An envelope we cannot accept; a sentence for logs and traces (never plaintext)."""


def conversation_id(chat_key_a: bytes, chat_key_b: bytes) -> str:
    low, high = sorted([chat_key_a, chat_key_b])
    return hashlib.sha256(b"chinwag-dm-v1" + low + high).hexdigest()[:32]


def conversation_content_topic(conv_id: str) -> str:
    return f"/chinwag/1/dm-{conv_id}/proto"


def contact_request_partition(recipient_chat_key: bytes) -> int:
    return hashlib.sha256(b"chinwag-contact-v1" + recipient_chat_key).digest()[0] % (
        CONTACT_REQUEST_PARTITIONS
    )


def contact_request_content_topic(recipient_chat_key: bytes) -> str:
    return contact_request_topic_of(contact_request_partition(recipient_chat_key))


def contact_request_topic_of(partition: int) -> str:
    return f"/chinwag/1/contact-{partition}/proto"


def _curve(key: bytes) -> vodozemac.Curve25519PublicKey:
    try:
        return vodozemac.Curve25519PublicKey.from_bytes(key)
    except vodozemac.KeyException:
        raise DirectError("the envelope names an invalid identity key") from None


@dataclass(frozen=True, slots=True)
class Envelope:
    sender_identity_key: bytes
    olm_type: int
    ciphertext: bytes

    def encode(self) -> bytes:
        return direct_pb2.DirectEnvelope(
            version=ENVELOPE_VERSION,
            sender_identity_key=self.sender_identity_key,
            olm_type=self.olm_type,
            ciphertext=self.ciphertext,
        ).SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> Envelope:
        pb = parse(direct_pb2.DirectEnvelope, data, DirectError, "a chinwag envelope")
        if pb.version != ENVELOPE_VERSION:
            raise DirectError(f"unknown envelope version {pb.version}")
        if len(pb.sender_identity_key) != 32 or pb.olm_type not in (OLM_PRE_KEY, OLM_NORMAL):
            raise DirectError("malformed envelope")
        return cls(pb.sender_identity_key, pb.olm_type, pb.ciphertext)


@dataclass(frozen=True, slots=True)
class Opened:
    """A decrypted envelope: who sent it (proven by Olm) and the payload."""

    sender_identity_key: bytes
    payload: direct_pb2.DirectPayload
    new_session: bool
    session_id: str
    """The Olm session that decrypted it."""


@dataclass
class DirectSessions:
    """The Olm sessions of one profile, per contact identity key, preferred first.

    Replays: a contact link's fallback key accepts any number of pre-key messages, so a
    captured first message could open a fresh session again once its own session was evicted.
    The ids of inbound sessions already created are kept (bounded, persisted) and never opened
    twice. A new inbound session does not displace a session the peer has been sending in
    (`peer_used`) until the peer sends in the new one again.

    Strangers: a pre-key message from an unknown key opens a session before anyone has checked
    who sent it. Such senders stay "unverified" until `verify_request` accepts their request
    or we send to them; at most MAX_UNVERIFIED_SENDERS are kept (oldest dropped first), and a
    request failing verification leaves no session behind.

    Persistence is per peer: every change marks the peer's identity key, and `take_changes`
    returns a row for each marked peer only (or its deletion), so saving after a message
    costs the same however many peers we hold sessions with. Each row carries its place in
    the two orders above (`inbound_rank`, `unverified_rank`), so they survive a restart.
    """

    identity: Identity
    sessions: dict[bytes, list[vodozemac.Session]] = field(default_factory=dict)
    inbound_ids: dict[bytes, list[str]] = field(default_factory=dict)
    """Per identity key, ids of inbound sessions already created, oldest first."""
    unverified: dict[bytes, None] = field(default_factory=dict)
    """Senders whose every session came from an unchecked pre-key message, oldest first."""
    peer_used: dict[bytes, str] = field(default_factory=dict)
    """Per identity key, the session the peer last sent us a message in (after its first)."""
    changed: set[bytes] = field(default_factory=set)
    """Peers whose state moved since the last `take_changes`."""
    inbound_rank: dict[bytes, int] = field(default_factory=dict)
    """Per identity key, when (a counter) it last joined the end of `inbound_ids`."""
    unverified_rank: dict[bytes, int] = field(default_factory=dict)
    """Per identity key, when (a counter) it joined `unverified`."""
    _clock: int = 0

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _remember(self, their_key: bytes, session: vodozemac.Session, *, prefer: bool) -> None:
        known = self.sessions.setdefault(their_key, [])
        known.insert(0 if prefer or not known else 1, session)
        del known[MAX_SESSIONS_PER_CONTACT:]
        if self.peer_used.get(their_key) not in {s.session_id for s in known}:
            self.peer_used.pop(their_key, None)
        self.changed.add(their_key)

    def _record_inbound(self, their_key: bytes, session_id: str) -> None:
        ids = self.inbound_ids.pop(their_key, [])  # re-inserted: most recently active last
        ids.append(session_id)
        del ids[:-MAX_INBOUND_IDS_PER_CONTACT]
        self.inbound_ids[their_key] = ids
        self.inbound_rank[their_key] = self._tick()
        self.changed.add(their_key)
        while len(self.inbound_ids) > MAX_INBOUND_ID_SENDERS:
            oldest = next(iter(self.inbound_ids))
            del self.inbound_ids[oldest]
            self.inbound_rank.pop(oldest, None)
            self.changed.add(oldest)

    def _trust(self, their_key: bytes) -> None:
        if their_key in self.unverified:
            del self.unverified[their_key]
            self.unverified_rank.pop(their_key, None)
            self.changed.add(their_key)

    def vouch(self, their_identity_key: bytes) -> None:
        """Someone we know by other means (a member of one of our groups, by its signed log)
        is no longer an unverified sender: their sessions are not evicted as a stranger's."""
        self._trust(their_identity_key)

    def has_session(self, their_identity_key: bytes) -> bool:
        return bool(self.sessions.get(their_identity_key))

    def seal_first(self, link: ContactLink, payload: direct_pb2.DirectPayload) -> Envelope:
        """Start a session from someone's contact link (a pre-key message to their fallback key)."""
        session = self.identity.account.create_outbound_session(
            _curve(link.identity_key), _curve(link.fallback_key)
        )
        self._trust(link.identity_key)
        self._remember(link.identity_key, session, prefer=True)
        return self._seal(link.identity_key, session, payload)

    def seal(self, their_identity_key: bytes, payload: direct_pb2.DirectPayload) -> Envelope:
        known = self.sessions.get(their_identity_key)
        if not known:
            raise DirectError("there is no session with this contact yet")
        self._trust(their_identity_key)
        return self._seal(their_identity_key, known[0], payload)

    def _seal(
        self, their_key: bytes, session: vodozemac.Session, payload: direct_pb2.DirectPayload
    ) -> Envelope:
        self.changed.add(their_key)  # the ratchet moves
        olm_type, body = session.encrypt(payload.SerializeToString()).to_parts()
        return Envelope(self.identity.identity_key, olm_type, body)

    def open(self, envelope: Envelope) -> Opened:
        try:
            message = vodozemac.AnyOlmMessage.from_parts(envelope.olm_type, envelope.ciphertext)
            pre_key = message.to_pre_key() if envelope.olm_type == OLM_PRE_KEY else None
        except vodozemac.DecodeException:
            raise DirectError("cannot decrypt: the ciphertext is malformed") from None
        their_key = envelope.sender_identity_key
        known = self.sessions.get(their_key, [])
        plaintext: bytes | None = None
        opened_by = ""
        new_session = False
        replayed = False
        for session in known:
            try:
                if pre_key is not None and not session.session_matches(pre_key):
                    continue
                # A pre-key message of a session we hold that no longer decrypts is a replay:
                # never let it open a second session (the fallback key would allow that).
                replayed = pre_key is not None
                plaintext = bytes(session.decrypt(message))
                self.peer_used[their_key] = opened_by = session.session_id
                self.changed.add(their_key)
                if session is not known[0]:  # the peer moved to this session: prefer it
                    known.remove(session)
                    known.insert(0, session)
                break
            except vodozemac.OlmDecryptionException:
                continue
        if plaintext is None:
            if pre_key is None:
                raise DirectError("cannot decrypt: no session with this sender matches")
            if replayed or pre_key.session_id() in self.inbound_ids.get(their_key, ()):
                raise DirectError("cannot decrypt: a replayed message")
            try:
                session, raw = self.identity.account.create_inbound_session(
                    _curve(their_key), pre_key
                )
            except (vodozemac.SessionCreationException, vodozemac.DecodeException):
                raise DirectError("cannot decrypt: the pre-key message is not for us") from None
            self._record_inbound(their_key, session.session_id)
            if not known:
                self._hold_unverified(their_key)
            # A session the peer has sent in since it began stays preferred over this one until
            # the peer sends in the new one again: an old pre-key message (a stale re-send, a
            # replay we no longer recognise) must not move our replies somewhere it left.
            confirmed = bool(known) and self.peer_used.get(their_key) == known[0].session_id
            self._remember(their_key, session, prefer=not confirmed)
            plaintext, new_session, opened_by = bytes(raw), True, session.session_id
        what = "a chinwag payload, though it decrypted"
        payload = parse(direct_pb2.DirectPayload, plaintext, DirectError, what)
        return Opened(their_key, payload, new_session, opened_by)

    def _hold_unverified(self, their_key: bytes) -> None:
        self.unverified.pop(their_key, None)
        self.unverified[their_key] = None
        self.unverified_rank[their_key] = self._tick()
        self.changed.add(their_key)
        while len(self.unverified) > MAX_UNVERIFIED_SENDERS:
            self._forget(next(iter(self.unverified)))

    def verify_request(self, opened: Opened) -> VerifiedRequest:
        """`verified_request_sender`, and the sender's sessions follow the verdict: kept (no
        longer at risk of eviction) when the link names the Olm-proven sender, and the session
        this request opened is dropped when it does not."""
        try:
            result = verified_request_sender(opened)
        except DirectError:
            if opened.new_session:
                self._drop_session(opened.sender_identity_key, opened.session_id)
            raise
        self._trust(opened.sender_identity_key)
        return result

    def _drop_session(self, their_key: bytes, session_id: str) -> None:
        # Its id stays in `inbound_ids`: the same message cannot open it again.
        known = [s for s in self.sessions.get(their_key, []) if s.session_id != session_id]
        if known:
            self.sessions[their_key] = known
            self.changed.add(their_key)
        else:
            self._forget(their_key)

    def _forget(self, their_key: bytes) -> None:
        self.sessions.pop(their_key, None)
        self.unverified.pop(their_key, None)
        self.unverified_rank.pop(their_key, None)
        self.peer_used.pop(their_key, None)
        self.changed.add(their_key)

    def forget(self, their_identity_key: bytes) -> None:
        """Drop everything about a peer, the replay guard included: their request was dropped
        as spam, and a copy of it arriving again is only their request again."""
        self._forget(their_identity_key)
        self.inbound_ids.pop(their_identity_key, None)
        self.inbound_rank.pop(their_identity_key, None)

    # ---- persistence -----------------------------------------------------------------------
    def pickle(self, key: bytes) -> dict[str, Any]:
        """A JSON-able form; session pickles are encrypted with `key` (32 bytes)."""
        return {
            "version": PICKLE_VERSION,
            "sessions": {k.hex(): [s.pickle(key) for s in v] for k, v in self.sessions.items()},
            "inbound_ids": {k.hex(): list(v) for k, v in self.inbound_ids.items()},
            "unverified": [k.hex() for k in self.unverified],
            "peer_used": {k.hex(): v for k, v in self.peer_used.items()},
        }

    @classmethod
    def from_pickle(cls, identity: Identity, data: Mapping[str, Any], key: bytes) -> DirectSessions:
        """Reads `pickle()` output, and the first format ({key hex: [session pickles]})."""
        if "version" not in data:
            data = {"sessions": data}
        elif data["version"] != PICKLE_VERSION:
            raise DirectError(f"unknown direct sessions format {data['version']!r}")
        try:
            sessions = {
                bytes.fromhex(k): [vodozemac.Session.from_pickle(p, key) for p in v]
                for k, v in data["sessions"].items()
            }
        except vodozemac.PickleException:
            raise DirectError("the stored sessions cannot be opened with this key") from None
        inbound_ids = {bytes.fromhex(k): list(v) for k, v in data.get("inbound_ids", {}).items()}
        # Sessions stored before ids were kept: their ids count as seen, so no replay of
        # their first message can reopen them either.
        for their_key, known in sessions.items():
            ids = inbound_ids.setdefault(their_key, [])
            ids.extend(s.session_id for s in known if s.session_id not in ids)
            del ids[:-MAX_INBOUND_IDS_PER_CONTACT]
        unverified = {bytes.fromhex(k): None for k in data.get("unverified", [])}
        peer_used = {bytes.fromhex(k): str(v) for k, v in data.get("peer_used", {}).items()}
        restored = cls(identity, sessions, inbound_ids, unverified, peer_used)
        for their_key in inbound_ids:
            restored.inbound_rank[their_key] = restored._tick()
        for their_key in unverified:
            restored.unverified_rank[their_key] = restored._tick()
        return restored

    def take_changes(self, key: bytes) -> SessionChanges:
        """The rows of the peers whose state moved since the last call (session pickles
        encrypted with `key`), and the peers to delete; the marks are cleared. Hand the
        result back to `changes_not_saved` if writing it fails."""
        rows: dict[str, dict[str, Any]] = {}
        deleted: list[str] = []
        for their_key in self.changed:
            row = self._row(their_key, key)
            if row is None:
                deleted.append(their_key.hex())
            else:
                rows[their_key.hex()] = row
        self.changed = set()
        return SessionChanges(rows, deleted)

    def changes_not_saved(self, changes: SessionChanges) -> None:
        """Writing `changes` failed: mark those peers again for the next save."""
        self.changed.update(bytes.fromhex(k) for k in (*changes.rows, *changes.deleted))

    def mark_all_changed(self) -> None:
        """Every peer is written on the next save (moving from the whole-structure format)."""
        self.changed.update(self.sessions, self.inbound_ids, self.unverified, self.peer_used)

    def _row(self, their_key: bytes, key: bytes) -> dict[str, Any] | None:
        sessions = self.sessions.get(their_key, [])
        ids = self.inbound_ids.get(their_key)
        unverified = their_key in self.unverified
        peer_used = self.peer_used.get(their_key)
        if not sessions and ids is None and not unverified and peer_used is None:
            return None
        return {
            "version": ROW_VERSION,
            "sessions": [s.pickle(key) for s in sessions],
            "inbound_ids": list(ids) if ids is not None else None,
            "inbound_rank": self.inbound_rank.get(their_key) if ids is not None else None,
            "unverified_rank": self.unverified_rank.get(their_key) if unverified else None,
            "peer_used": peer_used,
        }

    @classmethod
    def from_rows(
        cls, identity: Identity, rows: Mapping[str, Mapping[str, Any]], key: bytes
    ) -> DirectSessions:
        """Reads the rows `take_changes` wrote, one per peer identity key (hex)."""
        restored = cls(identity)
        inbound: list[tuple[int, bytes, list[str]]] = []
        unverified: list[tuple[int, bytes]] = []
        try:
            for key_hex, row in rows.items():
                if row.get("version") != ROW_VERSION:
                    raise DirectError(f"unknown direct session row format {row.get('version')!r}")
                their_key = bytes.fromhex(key_hex)
                sessions = [vodozemac.Session.from_pickle(p, key) for p in row["sessions"]]
                if sessions:
                    restored.sessions[their_key] = sessions
                if row["inbound_ids"] is not None:
                    inbound.append((int(row["inbound_rank"]), their_key, list(row["inbound_ids"])))
                if row["unverified_rank"] is not None:
                    unverified.append((int(row["unverified_rank"]), their_key))
                if row["peer_used"] is not None:
                    restored.peer_used[their_key] = str(row["peer_used"])
        except vodozemac.PickleException:
            raise DirectError("the stored sessions cannot be opened with this key") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise DirectError(f"unreadable direct session row: {exc}") from None
        for rank, their_key, ids in sorted(inbound):
            restored.inbound_ids[their_key] = ids
            restored.inbound_rank[their_key] = rank
        for rank, their_key in sorted(unverified):
            restored.unverified[their_key] = None
            restored.unverified_rank[their_key] = rank
        ranks = [*restored.inbound_rank.values(), *restored.unverified_rank.values()]
        restored._clock = max(ranks, default=0)
        return restored


@dataclass(frozen=True, slots=True)
class SessionChanges:
    """What `DirectSessions.take_changes` found moved: rows to write, keyed by peer identity
    key (hex), and the peers whose rows to delete."""

    rows: dict[str, dict[str, Any]]
    deleted: list[str]

    def __bool__(self) -> bool:
        return bool(self.rows or self.deleted)


class VerifiedRequest(NamedTuple):
    link: ContactLink
    intro: str
    request_id: str
    """Stable across re-sends of one request (see chat.contacts); empty from old clients."""


def request_payload(
    own_link: str, intro: str, request_id: str = "", pair_nonce: bytes = b""
) -> direct_pb2.DirectPayload:
    return direct_pb2.DirectPayload(
        request=direct_pb2.ContactRequestBody(
            link=own_link, intro=intro, request_id=request_id, pair_nonce=pair_nonce
        )
    )


def verified_request_sender(opened: Opened) -> VerifiedRequest:
    """The link and intro of a contact request, checked against the Olm-proven sender; the
    intro is made safe to show (see `sanitize_display_text`), keeping its line breaks, and
    cut to MAX_INTRO_LENGTH characters."""
    if opened.payload.WhichOneof("body") != "request":
        raise DirectError("not a contact request")
    try:
        link = ContactLink.parse(opened.payload.request.link)
    except IdentityError as exc:
        raise DirectError(f"contact request with a bad link: {exc}") from None
    if link.identity_key != opened.sender_identity_key:
        raise DirectError("contact request whose link names someone other than its sender")
    request = opened.payload.request
    intro = sanitize_display_text(request.intro[: MAX_INTRO_LENGTH * 4], multiline=True)
    return VerifiedRequest(link, intro[:MAX_INTRO_LENGTH], request.request_id)
