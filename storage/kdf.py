"""Passphrase → database key: Argon2id (libsodium via pynacl) and keys derived from it.

The parameters are stored per profile, so tuning them later never locks anyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from nacl.pwhash import argon2id

from storage.errors import EmptyPassphrase

KEY_BYTES = 32
SALT_BYTES = argon2id.SALTBYTES

DEFAULT_OPSLIMIT = 5
DEFAULT_MEMLIMIT = 256 * 1024 * 1024
"""Tuned so one unlock takes about 0.5 s on the reference machine (docs/storage.md)."""

# Bounds for parameters read back from disk: a tampered key file must not make us allocate
# gigabytes or loop for minutes.
MAX_OPSLIMIT = 64
MAX_MEMLIMIT = 4 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class KdfParams:
    salt: bytes
    opslimit: int = DEFAULT_OPSLIMIT
    memlimit: int = DEFAULT_MEMLIMIT

    @classmethod
    def fresh(
        cls, *, opslimit: int = DEFAULT_OPSLIMIT, memlimit: int = DEFAULT_MEMLIMIT
    ) -> KdfParams:
        return cls(salt=os.urandom(SALT_BYTES), opslimit=opslimit, memlimit=memlimit)

    def valid(self) -> bool:
        return (
            len(self.salt) == SALT_BYTES
            and argon2id.OPSLIMIT_MIN <= self.opslimit <= MAX_OPSLIMIT
            and argon2id.MEMLIMIT_MIN <= self.memlimit <= MAX_MEMLIMIT
        )


def derive_database_key(passphrase: str, params: KdfParams) -> bytes:
    """The raw 256-bit SQLCipher key. Slow on purpose: run it off the event loop."""
    if not passphrase:
        raise EmptyPassphrase()
    return bytes(
        argon2id.kdf(
            KEY_BYTES,
            passphrase.encode("utf-8"),
            params.salt,
            opslimit=params.opslimit,
            memlimit=params.memlimit,
        )
    )


def subkey(database_key: bytes, purpose: str) -> bytes:
    """An independent 32-byte key for one purpose (BLAKE2b keyed with the database key)."""
    return hashlib.blake2b(
        purpose.encode("ascii"), key=database_key, digest_size=KEY_BYTES, person=b"chinwag-subkey"
    ).digest()


def key_check(database_key: bytes) -> bytes:
    """A one-way check value stored beside the DB: tells a wrong passphrase from a damaged file."""
    return subkey(database_key, "key-check")


def matches_check(database_key: bytes, check: bytes) -> bool:
    return hmac.compare_digest(key_check(database_key), check)
