"""The Ed25519 keys a community signs with: its owner key (one per community, held by the
owner; the community id is derived from its public half) and its admins' chat keys.

A `Signer` is anything with a 32-byte public key and a `sign`: `OwnerKey` here, or the
profile's `chat.identity.Identity` (its chat key)."""

from __future__ import annotations

from typing import Protocol

import nacl.exceptions
import nacl.signing


class SignatureRefused(ValueError):
    """A signature that does not verify; a sentence for the log."""


class Signer(Protocol):
    @property
    def chat_key(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


class OwnerKey:
    """A community's owner key pair. `chat_key` names its public half (the Signer protocol)."""

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        self._key = signing_key

    @classmethod
    def generate(cls) -> OwnerKey:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> OwnerKey:
        if len(seed) != 32:
            raise SignatureRefused("an owner key seed is 32 bytes")
        return cls(nacl.signing.SigningKey(seed))

    def seed(self) -> bytes:
        return bytes(self._key)

    @property
    def chat_key(self) -> bytes:
        return bytes(self._key.verify_key)

    def sign(self, data: bytes) -> bytes:
        return bytes(self._key.sign(data).signature)

    def __repr__(self) -> str:
        # Never print the seed, not even in a traceback.
        return f"OwnerKey(public={self.chat_key.hex()})"


def verify(public_key: bytes, data: bytes, signature: bytes) -> None:
    """Raise SignatureRefused unless `signature` is `public_key`'s Ed25519 signature of `data`."""
    if len(public_key) != 32 or len(signature) != 64:
        raise SignatureRefused("a signature or key of the wrong size")
    try:
        nacl.signing.VerifyKey(public_key).verify(data, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        raise SignatureRefused("a bad signature") from None
