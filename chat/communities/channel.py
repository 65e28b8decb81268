"""Channel messages: sealed with the community's content key of an epoch, signed inside by
the sender's own chat key.

The content key is shared by every member (it came with the acceptance, over Olm), so the
seal alone cannot tell members apart: the sender's Ed25519 signature inside the seal can.
It covers the community, the channel and the epoch too, so a message cannot be replayed
into another channel or community. A frame whose sender is not a member in the description
we hold, or is banned, is refused (a kicked member still holds an old epoch's key, and once
the new epoch is out their frames under the old one are refused for that reason).

Wire: chinwag.community.ChannelFrame{epoch, nonce, XSalsa20-Poly1305(ChannelInner)}.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import nacl.exceptions
import nacl.secret

from chat.communities.description import Description
from chat.communities.signer import SignatureRefused, Signer, verify
from chat.identity import IdentityError, format_chat_key
from chat.proto import community_pb2
from chat.waku.protowire import parse

FORMAT = 1
SIGNATURE_CONTEXT = b"chinwag-community-channel-v1"
MAX_FRAME_BYTES = 96 * 1024
MAX_EPOCHS_KEPT = 8
"""Epoch keys kept per community (the newest): late messages of recent epochs still open."""
KEY_SIZE = nacl.secret.SecretBox.KEY_SIZE


class ChannelRefused(ValueError):
    """A channel frame that must not be shown; a sentence for the log."""


def community_content_topic(community_id: str) -> str:
    """Where the description, join answers and presence travel."""
    return f"/chinwag/1/community-{community_id}/proto"


def requests_content_topic(community_id: str) -> str:
    """Join requests, answers, keys and copies of the description, on the network's default
    shard (a requester holds no shard key)."""
    return f"/chinwag/1/community-{community_id}-requests/proto"


def channel_content_topic(channel_id: str) -> str:
    return f"/chinwag/1/channel-{channel_id}/proto"


def new_content_key() -> bytes:
    return secrets.token_bytes(KEY_SIZE)


class EpochKeys:
    """A community's content keys by epoch (the newest MAX_EPOCHS_KEPT)."""

    def __init__(self) -> None:
        self._keys: dict[int, bytes] = {}

    def add(self, epoch: int, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("a content key is 32 bytes")
        self._keys[epoch] = key
        for old in sorted(self._keys)[:-MAX_EPOCHS_KEPT]:
            del self._keys[old]

    def get(self, epoch: int) -> bytes | None:
        return self._keys.get(epoch)

    @property
    def current(self) -> tuple[int, bytes] | None:
        if not self._keys:
            return None
        epoch = max(self._keys)
        return epoch, self._keys[epoch]

    def items(self) -> list[tuple[int, bytes]]:
        return sorted(self._keys.items())


def _signed_part(community_id: str, channel_id: str, epoch: int, body: bytes) -> bytes:
    return (
        SIGNATURE_CONTEXT
        + community_id.encode()
        + channel_id.encode()
        + epoch.to_bytes(8, "big")
        + body
    )


def seal(
    signer: Signer, community_id: str, channel_id: str, epoch: int, key: bytes, body: bytes
) -> bytes:
    """A channel frame carrying `body` (an SDS frame), signed by `signer` and sealed."""
    signature = signer.sign(_signed_part(community_id, channel_id, epoch, body))
    inner = community_pb2.ChannelInner(
        sender=signer.chat_key, body=body, signature=signature
    ).SerializeToString()
    nonce = secrets.token_bytes(nacl.secret.SecretBox.NONCE_SIZE)
    ciphertext = nacl.secret.SecretBox(key).encrypt(inner, nonce).ciphertext
    return community_pb2.ChannelFrame(
        format=FORMAT, epoch=epoch, nonce=nonce, ciphertext=ciphertext
    ).SerializeToString()


@dataclass(frozen=True, slots=True)
class Opened:
    sender: str
    """The sender's chat key (text form), checked by their signature."""
    epoch: int
    body: bytes


def open_frame(frame: bytes, channel_id: str, keys: EpochKeys, description: Description) -> Opened:
    """Unseal and check a frame of `channel_id`; raise ChannelRefused."""
    if len(frame) > MAX_FRAME_BYTES:
        raise ChannelRefused(f"a channel frame of {len(frame)} bytes")
    if description.channel(channel_id) is None:
        raise ChannelRefused("a frame of a channel the community does not have")
    pb = parse(community_pb2.ChannelFrame, frame, ChannelRefused, "a channel frame")
    if pb.format != FORMAT or len(pb.nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise ChannelRefused("a malformed channel frame")
    key = keys.get(pb.epoch)
    if key is None:
        raise ChannelRefused(f"a channel frame of epoch {pb.epoch}, whose key we do not hold")
    try:
        inner_bytes = nacl.secret.SecretBox(key).decrypt(pb.ciphertext, pb.nonce)
    except nacl.exceptions.CryptoError:
        raise ChannelRefused("a channel frame that does not decrypt") from None
    inner = parse(community_pb2.ChannelInner, inner_bytes, ChannelRefused, "a channel frame")
    try:
        sender = format_chat_key(inner.sender)
        verify(
            inner.sender,
            _signed_part(description.id, channel_id, pb.epoch, inner.body),
            inner.signature,
        )
    except (IdentityError, SignatureRefused):
        raise ChannelRefused("a channel frame with a bad sender signature") from None
    if sender in description.banned:
        raise ChannelRefused("a channel frame from a banned member")
    if description.role_of(sender) is None:
        raise ChannelRefused("a channel frame from someone who is not a member")
    return Opened(sender, pb.epoch, inner.body)
