"""1:1 envelopes and what they carry (chat/direct.py, chat/verification.py): envelopes off
the network opened with real Olm sessions, and the plaintext payloads a contact can put in
them (contact requests and answers, SDS frames with chat messages, verification steps),
encrypted and opened for real before they are read."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from google.protobuf.message import DecodeError

from chat.direct import DirectError, DirectSessions, Envelope, request_payload
from chat.identity import ContactLink, Identity, IdentityError, sanitize_display_text
from chat.proto import direct_pb2
from chat.reliability.sds import SdsChannel, SdsError, SdsFrame
from chat.verification import CANCEL, MAC, REPLY, START, Verification, VerificationError
from fuzz.contract import Target, check, join_records, records, round_trip

PICKLE_KEY = bytes(range(32))


@dataclass(frozen=True)
class Pair:
    """Two identities with an established session: `me` receives, `peer` sends."""

    me: Identity
    peer: Identity
    me_state: dict[str, object]
    peer_state: dict[str, object]
    first_envelope: Envelope
    """The peer's first message (a pre-key message) before `me` opened it."""

    def sessions(self) -> tuple[DirectSessions, DirectSessions]:
        """Fresh copies, so every input starts from the same state."""
        return (
            DirectSessions.from_pickle(self.me, self.me_state, PICKLE_KEY),
            DirectSessions.from_pickle(self.peer, self.peer_state, PICKLE_KEY),
        )


@cache
def pair() -> Pair:
    me, peer = Identity.create("Me", 0), Identity.create("Peer", 0)
    mine, theirs = DirectSessions(me), DirectSessions(peer)
    first = theirs.seal_first(
        ContactLink.parse(me.contact_link()), request_payload(peer.contact_link(), "hi", "r1")
    )
    mine.open(first)
    theirs.open(mine.seal(peer.identity_key, direct_pb2.DirectPayload(sds_frame=b"ok")))
    return Pair(me, peer, mine.pickle(PICKLE_KEY), theirs.pickle(PICKLE_KEY), first)


def fuzz_envelope(data: bytes) -> None:
    mine, _ = pair().sessions()
    for record in records(data):
        try:
            envelope = Envelope.decode(record)
        except DirectError:
            continue
        round_trip(envelope, Envelope.decode(envelope.encode()))
        try:
            opened = mine.open(envelope)
        except DirectError:
            continue
        check(opened.sender_identity_key == envelope.sender_identity_key, "sender changed")


def _envelope_seeds() -> Iterable[bytes]:
    setup = pair()
    _, theirs = setup.sessions()
    normal = theirs.seal(setup.me.identity_key, direct_pb2.DirectPayload(sds_frame=b"frame"))
    stranger = DirectSessions(Identity.create("Stranger", 0))
    cold = stranger.seal_first(
        ContactLink.parse(setup.me.contact_link()), direct_pb2.DirectPayload(sds_frame=b"x")
    )
    yield join_records([setup.first_envelope.encode(), normal.encode()])
    yield join_records([cold.encode(), normal.encode(), normal.encode()])


CHANNEL = "chat-1"


def _is_safe(text: str, multiline: bool) -> bool:
    allowed_controls = {"\n"} if multiline else set()
    return all(unicodedata.category(c) != "Cc" or c in allowed_controls for c in text)


def _read_frame(payload: direct_pb2.DirectPayload, peer_id: str) -> None:
    try:
        frame = SdsFrame.decode(payload.sds_frame)
    except SdsError:
        return
    channel = SdsChannel(CHANNEL, "me")
    try:
        events = channel.receive(frame, 1_700_000_000_000)
    except SdsError:
        return
    if frame.sender_id != peer_id or not frame.content or not events:
        return
    try:
        body = direct_pb2.ChatMessage.FromString(frame.content)
    except DecodeError:
        return
    text = sanitize_display_text(body.text, multiline=True)
    check(_is_safe(text, multiline=True), f"control characters survive in {text!r}")


def _read_verification(payload: direct_pb2.DirectPayload, me: Identity, peer: Identity) -> None:
    body = payload.verification
    flow = Verification(me.chat_key, peer.chat_key, body.verification_id)
    try:
        if body.step in (START, REPLY):
            flow.their_key(body.public_key)
            flow.confirm()
        elif body.step == MAC:
            flow.their_confirmation(body.mac)
        elif body.step == CANCEL:
            flow.cancel()
    except VerificationError:
        pass


def fuzz_payload(data: bytes) -> None:
    """The peer seals the input as its payload; we open it and read it as the messenger does."""
    setup = pair()
    mine, theirs = setup.sessions()
    olm_type, body = theirs.sessions[setup.me.identity_key][0].encrypt(data).to_parts()
    sealed = Envelope(setup.peer.identity_key, olm_type, body)
    try:
        opened = mine.open(sealed)
    except DirectError:
        return
    kind = opened.payload.WhichOneof("body")
    if kind == "request":
        try:
            link, intro, _ = mine.verify_request(opened)
        except DirectError:
            return
        check(link.identity_key == setup.peer.identity_key, "a request vouched for someone else")
        check(_is_safe(intro, multiline=True), f"control characters survive in {intro!r}")
    elif kind == "answer":
        try:
            link = ContactLink.parse(opened.payload.answer.link)
        except IdentityError:
            return
        check(_is_safe(link.display_name, multiline=False), "unsafe display name")
    elif kind == "sds_frame":
        _read_frame(opened.payload, "peer")
    elif kind == "verification":
        _read_verification(opened.payload, setup.me, setup.peer)


def _payload_seeds() -> Iterable[bytes]:
    setup = pair()
    frame = SdsFrame(
        "peer",
        "m1",
        CHANNEL,
        1_700_000_000_000,
        content=direct_pb2.ChatMessage(
            id="m1", text="hello\nthere", sent_at_ms=1_700_000_000_000
        ).SerializeToString(),
    )
    sas = Verification(setup.peer.chat_key, setup.me.chat_key, "v1")
    payloads = [
        request_payload(setup.peer.contact_link(), "hi, it's me", "r1"),
        direct_pb2.DirectPayload(
            answer=direct_pb2.ContactAnswerBody(accepted=True, link=setup.peer.contact_link())
        ),
        direct_pb2.DirectPayload(sds_frame=frame.encode()),
        direct_pb2.DirectPayload(
            verification=direct_pb2.VerificationBody(
                verification_id="v1", step=START, public_key=sas.sas.public_key
            )
        ),
        direct_pb2.DirectPayload(
            verification=direct_pb2.VerificationBody(verification_id="v1", step=MAC, mac="AAAA")
        ),
    ]
    return [p.SerializeToString() for p in payloads]


TARGETS = (
    Target(
        name="direct_envelope",
        decoder="chat.direct.Envelope.decode, then DirectSessions.open (real Olm sessions)",
        contract="DirectError only; envelopes round-trip; an opened envelope names its sender",
        fuzz=fuzz_envelope,
        seeds=_envelope_seeds,
        weight=0.5,
    ),
    Target(
        name="direct_payload",
        decoder="the plaintext of an Olm message from a contact: chat.direct.DirectSessions.open "
        "(DirectPayload), verify_request, ContactLink.parse of answers, SdsFrame.decode + "
        "SdsChannel.receive + ChatMessage, chat.verification.Verification steps",
        contract="DirectError, IdentityError, SdsError, VerificationError, protobuf DecodeError "
        "(ChatMessage, as the messenger expects) only; text shown is free of control characters",
        fuzz=fuzz_payload,
        seeds=_payload_seeds,
        weight=0.5,
    ),
)
