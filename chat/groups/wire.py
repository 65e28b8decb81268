"""What a private group puts on the wire: its content topic, the envelope every group message
travels in, and the content of its SDS frames (chat/proto/group.proto). Decoders raise
GroupWireError on bad bytes and bound every length they read."""

from __future__ import annotations

from dataclasses import dataclass

from chat.groups.log import MAX_MEMBERS
from chat.proto import group_pb2
from chat.waku.protowire import parse

ENVELOPE_VERSION = 1
MAX_SESSION_ID = 64
"""vodozemac's session ids are 43 characters (unpadded base64 of 32 bytes)."""
MAX_SHARE_BYTES = 24 * 1024
"""One pairwise share: an Olm pre-key message around a session key, a link, and at most
MAX_SHARE_CHANGES signed changes (2 KB each at most)."""


class GroupWireError(ValueError):
    """Bytes that are not a group message; a sentence for the log."""


def group_content_topic(group_id: str) -> str:
    return f"/chinwag/1/group-{group_id}/proto"


@dataclass(frozen=True, slots=True)
class Share:
    recipient_identity_key: bytes
    envelope: bytes
    """A chinwag.direct.DirectEnvelope (chat/direct.py) for that member alone."""


@dataclass(frozen=True, slots=True)
class GroupEnvelope:
    session_id: str
    ciphertext: bytes
    shares: tuple[Share, ...] = ()

    def encode(self) -> bytes:
        pb = group_pb2.GroupEnvelope(
            version=ENVELOPE_VERSION, session_id=self.session_id, ciphertext=self.ciphertext
        )
        for share in self.shares:
            pb.shares.add(
                recipient_identity_key=share.recipient_identity_key, envelope=share.envelope
            )
        return pb.SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> GroupEnvelope:
        pb = parse(group_pb2.GroupEnvelope, data, GroupWireError, "a group envelope")
        if pb.version != ENVELOPE_VERSION:
            raise GroupWireError(f"a group envelope of unknown version {pb.version}")
        if not pb.session_id or len(pb.session_id) > MAX_SESSION_ID or not pb.ciphertext:
            raise GroupWireError("a group envelope without a valid session or ciphertext")
        if len(pb.shares) > MAX_MEMBERS:
            raise GroupWireError(f"a group envelope with {len(pb.shares)} shares")
        shares = []
        for share in pb.shares:
            if len(share.recipient_identity_key) != 32 or len(share.envelope) > MAX_SHARE_BYTES:
                raise GroupWireError("a group envelope with a malformed share")
            shares.append(Share(share.recipient_identity_key, share.envelope))
        return cls(pb.session_id, pb.ciphertext, tuple(shares))


@dataclass(frozen=True, slots=True)
class GroupContent:
    """A content frame's payload: a chat message (a chinwag.direct.ChatMessage) or a signed
    membership change; exactly one."""

    message: bytes = b""
    change: bytes = b""

    def encode(self) -> bytes:
        pb = group_pb2.GroupContent()
        if self.change:
            pb.change.ParseFromString(self.change)
        else:
            pb.message = self.message
        return pb.SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> GroupContent:
        pb = parse(group_pb2.GroupContent, data, GroupWireError, "a group frame's content")
        body = pb.WhichOneof("body")
        if body == "message":
            return cls(message=pb.message)
        if body == "change":
            return cls(change=pb.change.SerializeToString())
        raise GroupWireError("a group frame whose content is neither a message nor a change")
