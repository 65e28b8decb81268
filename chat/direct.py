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
from dataclasses import dataclass, field

import vodozemac
from google.protobuf.message import DecodeError

from chat.identity import ContactLink, Identity, IdentityError
from chat.proto import direct_pb2

ENVELOPE_VERSION = 1
CONTACT_REQUEST_PARTITIONS = 32
MAX_SESSIONS_PER_CONTACT = 4
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
    return f"/chinwag/1/contact-{contact_request_partition(recipient_chat_key)}/proto"


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
        try:
            pb = direct_pb2.DirectEnvelope.FromString(data)
        except DecodeError:
            raise DirectError("not a chinwag envelope") from None
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


@dataclass
class DirectSessions:
    """The Olm sessions of one profile, per contact identity key, newest first."""

    identity: Identity
    sessions: dict[bytes, list[vodozemac.Session]] = field(default_factory=dict)

    def _remember(self, their_key: bytes, session: vodozemac.Session) -> None:
        known = self.sessions.setdefault(their_key, [])
        known.insert(0, session)
        del known[MAX_SESSIONS_PER_CONTACT:]

    def has_session(self, their_identity_key: bytes) -> bool:
        return bool(self.sessions.get(their_identity_key))

    def seal_first(self, link: ContactLink, payload: direct_pb2.DirectPayload) -> Envelope:
        """Start a session from someone's contact link (a pre-key message to their fallback key)."""
        session = self.identity.account.create_outbound_session(
            _curve(link.identity_key), _curve(link.fallback_key)
        )
        self._remember(link.identity_key, session)
        return self._seal(session, payload)

    def seal(self, their_identity_key: bytes, payload: direct_pb2.DirectPayload) -> Envelope:
        known = self.sessions.get(their_identity_key)
        if not known:
            raise DirectError("there is no session with this contact yet")
        return self._seal(known[0], payload)

    def _seal(self, session: vodozemac.Session, payload: direct_pb2.DirectPayload) -> Envelope:
        olm_type, body = session.encrypt(payload.SerializeToString()).to_parts()
        return Envelope(self.identity.identity_key, olm_type, body)

    def open(self, envelope: Envelope) -> Opened:
        try:
            message = vodozemac.AnyOlmMessage.from_parts(envelope.olm_type, envelope.ciphertext)
            pre_key = message.to_pre_key() if envelope.olm_type == OLM_PRE_KEY else None
        except vodozemac.DecodeException:
            raise DirectError("cannot decrypt: the ciphertext is malformed") from None
        known = self.sessions.get(envelope.sender_identity_key, [])
        plaintext: bytes | None = None
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
                if session is not known[0]:  # the peer moved to this session: prefer it
                    known.remove(session)
                    known.insert(0, session)
                break
            except vodozemac.OlmDecryptionException:
                continue
        if plaintext is None:
            if replayed:
                raise DirectError("cannot decrypt: a replayed message")
            if pre_key is None:
                raise DirectError("cannot decrypt: no session with this sender matches")
            try:
                session, raw = self.identity.account.create_inbound_session(
                    _curve(envelope.sender_identity_key), pre_key
                )
            except (vodozemac.SessionCreationException, vodozemac.DecodeException):
                raise DirectError("cannot decrypt: the pre-key message is not for us") from None
            self._remember(envelope.sender_identity_key, session)
            plaintext, new_session = bytes(raw), True
        try:
            payload = direct_pb2.DirectPayload.FromString(plaintext)
        except DecodeError:
            raise DirectError("decrypted, but the payload is malformed") from None
        return Opened(envelope.sender_identity_key, payload, new_session)

    # ---- persistence -----------------------------------------------------------------------
    def pickle(self, key: bytes) -> dict[str, list[str]]:
        return {k.hex(): [s.pickle(key) for s in v] for k, v in self.sessions.items()}

    @classmethod
    def from_pickle(
        cls, identity: Identity, data: dict[str, list[str]], key: bytes
    ) -> DirectSessions:
        sessions = {
            bytes.fromhex(k): [vodozemac.Session.from_pickle(p, key) for p in v]
            for k, v in data.items()
        }
        return cls(identity, sessions)


def request_payload(own_link: str, intro: str) -> direct_pb2.DirectPayload:
    return direct_pb2.DirectPayload(
        request=direct_pb2.ContactRequestBody(link=own_link, intro=intro)
    )


def verified_request_sender(opened: Opened) -> tuple[ContactLink, str]:
    """The link and intro of a contact request, checked against the Olm-proven sender."""
    if opened.payload.WhichOneof("body") != "request":
        raise DirectError("not a contact request")
    try:
        link = ContactLink.parse(opened.payload.request.link)
    except IdentityError as exc:
        raise DirectError(f"contact request with a bad link: {exc}") from None
    if link.identity_key != opened.sender_identity_key:
        raise DirectError("contact request whose link names someone other than its sender")
    return link, opened.payload.request.intro
