"""What travels in a join flow: the request (to each moderator, inside Olm), the signed
answer (on the community's topic, and inside the acceptance), and the member keys an
acceptance or a rotation carries (inside Olm, to one member).

An answer counts only when it is signed by the owner key or by the chat key of someone the
description we hold names as owner or admin: a join acceptance from anyone else is refused
with a log line and changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chat.communities.description import (
    Description,
    DescriptionError,
    decode_description,
    is_id,
)
from chat.communities.join import MAX_REQUEST_MESSAGE
from chat.communities.roles import Action, allowed
from chat.communities.signer import SignatureRefused, Signer, verify
from chat.identity import (
    MAX_LINK_LENGTH,
    ContactLink,
    IdentityError,
    format_chat_key,
    parse_chat_key,
    sanitize_display_text,
)
from chat.proto import community_pb2
from chat.waku.protowire import parse

log = logging.getLogger(__name__)

FORMAT = 1
ANSWER_CONTEXT = b"chinwag-community-join-answer-v1"
MAX_ANSWER_BYTES = 1024
MAX_REASON = 200
MAX_REQUEST_BYTES = MAX_LINK_LENGTH + 4 * MAX_REQUEST_MESSAGE + 256
MAX_KEYS_BYTES = 140 * 1024
"""Member keys: two 32-byte keys, a description (at most 128 KB) and an answer."""


class JoinWireError(ValueError):
    """Bytes that are not a usable join message; a sentence for the log."""


@dataclass(frozen=True, slots=True)
class Request:
    request_id: str
    community_id: str
    link: ContactLink
    link_text: str
    message: str
    at: float
    expires_at: float

    @property
    def requester(self) -> str:
        return self.link.chat_key_text

    def encode(self) -> bytes:
        return community_pb2.JoinRequest(
            format=FORMAT,
            request_id=self.request_id,
            community_id=self.community_id,
            contact_link=self.link_text,
            message=self.message,
            at_ms=int(self.at * 1000),
            expires_at_ms=int(self.expires_at * 1000),
        ).SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> Request:
        if len(data) > MAX_REQUEST_BYTES:
            raise JoinWireError(f"a join request of {len(data)} bytes")
        pb = parse(community_pb2.JoinRequest, data, JoinWireError, "a join request")
        if pb.format != FORMAT or not is_id(pb.request_id) or not is_id(pb.community_id):
            raise JoinWireError("a join request without valid ids")
        try:
            link = ContactLink.parse(pb.contact_link)
        except IdentityError as exc:
            raise JoinWireError(f"a join request with a bad contact link: {exc}") from None
        message = sanitize_display_text(pb.message[: 4 * MAX_REQUEST_MESSAGE], multiline=True)
        return cls(
            request_id=pb.request_id,
            community_id=pb.community_id,
            link=link,
            link_text=pb.contact_link,
            message=message[:MAX_REQUEST_MESSAGE],
            at=pb.at_ms / 1000,
            expires_at=pb.expires_at_ms / 1000,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    request_id: str
    community_id: str
    requester: str
    accepted: bool
    reason: str
    at: float
    signer: bytes
    signed: bytes

    @property
    def signer_text(self) -> str:
        return format_chat_key(self.signer)


def sign_answer(
    signer: Signer,
    request_id: str,
    community_id: str,
    requester: str,
    *,
    accepted: bool,
    reason: str,
    now: float,
) -> Answer:
    body = community_pb2.JoinAnswer(
        format=FORMAT,
        request_id=request_id,
        community_id=community_id,
        requester=parse_chat_key(requester),
        accepted=accepted,
        reason=reason[:MAX_REASON],
        at_ms=int(now * 1000),
    ).SerializeToString()
    signed = community_pb2.Signed(
        body=body, signer=signer.chat_key, signature=signer.sign(ANSWER_CONTEXT + body)
    ).SerializeToString()
    return decode_answer(signed)


def decode_answer(signed: bytes) -> Answer:
    """A signed answer, its signature verified (not yet its signer's role: `check_answer`)."""
    if len(signed) > MAX_ANSWER_BYTES:
        raise JoinWireError(f"a join answer of {len(signed)} bytes")
    outer = parse(community_pb2.Signed, signed, JoinWireError, "a signed join answer")
    try:
        verify(outer.signer, ANSWER_CONTEXT + outer.body, outer.signature)
    except SignatureRefused as exc:
        raise JoinWireError(f"a join answer with {exc}") from None
    pb = parse(community_pb2.JoinAnswer, outer.body, JoinWireError, "a join answer")
    if pb.format != FORMAT or not is_id(pb.request_id) or not is_id(pb.community_id):
        raise JoinWireError("a join answer without valid ids")
    try:
        requester = format_chat_key(pb.requester)
    except IdentityError:
        raise JoinWireError("a join answer without a valid requester") from None
    return Answer(
        request_id=pb.request_id,
        community_id=pb.community_id,
        requester=requester,
        accepted=pb.accepted,
        reason=sanitize_display_text(pb.reason[: 4 * MAX_REASON])[:MAX_REASON],
        at=pb.at_ms / 1000,
        signer=outer.signer,
        signed=signed,
    )


def check_answer(answer: Answer, description: Description) -> None:
    """Raise JoinWireError unless the answer's signer may answer requests to `description`'s
    community (the owner key, or an owner's or admin's chat key)."""
    if answer.community_id != description.id:
        raise JoinWireError("a join answer for another community")
    if answer.signer == description.owner_key:
        return
    role = description.role_of(answer.signer_text)
    if not allowed(role, Action.ANSWER_REQUEST):
        raise JoinWireError("a join answer not signed by the owner or an admin")


def accept_answer(signed: bytes, description: Description) -> Answer | None:
    """The answer if it is valid for `description`, else None (logged)."""
    try:
        answer = decode_answer(signed)
        check_answer(answer, description)
    except JoinWireError as exc:
        log.info("join answer ignored: %s", exc)
        return None
    return answer


@dataclass(frozen=True, slots=True)
class MemberKeys:
    """Sent over Olm to one member: an epoch's content key, the shard's protection secret and
    the newest description; with the signed answer when it is an acceptance."""

    community_id: str
    epoch: int
    content_key: bytes
    protection_secret: bytes
    description: bytes
    answer: bytes = b""

    def encode(self) -> bytes:
        return community_pb2.MemberKeys(
            format=FORMAT,
            community_id=self.community_id,
            epoch=self.epoch,
            content_key=self.content_key,
            protection_secret=self.protection_secret,
            description=self.description,
            answer=self.answer,
        ).SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> MemberKeys:
        if len(data) > MAX_KEYS_BYTES:
            raise JoinWireError(f"member keys of {len(data)} bytes")
        pb = parse(community_pb2.MemberKeys, data, JoinWireError, "member keys")
        if pb.format != FORMAT or not is_id(pb.community_id):
            raise JoinWireError("member keys without a valid community id")
        if len(pb.content_key) != 32 or len(pb.protection_secret) not in (0, 32):
            raise JoinWireError("member keys with malformed keys")
        return cls(
            community_id=pb.community_id,
            epoch=pb.epoch,
            content_key=pb.content_key,
            protection_secret=pb.protection_secret,
            description=pb.description,
            answer=pb.answer,
        )

    def checked_description(self) -> Description:
        """The description it carries, verified and of its community (JoinWireError)."""
        try:
            description = decode_description(self.description)
        except DescriptionError as exc:
            raise JoinWireError(f"member keys with {exc}") from None
        if description.id != self.community_id:
            raise JoinWireError("member keys with another community's description")
        return description
