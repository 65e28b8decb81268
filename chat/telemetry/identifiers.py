"""The identifiers of docs/telemetry.md §Identifiers: random ids for an install and a
session, and blinded references for conversations and messages.

`k_tel = HKDF-SHA256(conversation secret, info="chinwag/telemetry/v1")` is derived by every
member of a conversation alike; `conv_ref = HMAC(k_tel, "conv")` and `msg_ref = HMAC(k_tel,
"msg" || app message id)`, each cut to 16 bytes (32 hex digits). Every member computes the
same references, so the collector can match a sender's `msg_sent` with its receivers'
`msg_recv`; without the conversation secret it cannot map them back to a topic, a key or a
message. For a public channel the "secret" is its public id: matching works, privacy is only
obscurity (the dictionary says so). The app message id is the chat protocol's own (stable
across resends), never the Waku envelope hash, which changes with every resend.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

TELEMETRY_INFO = b"chinwag/telemetry/v1"
REF_BYTES = 16
_SIZE_LIMITS = ((1024, "lt1k"), (4096, "1k-4k"), (16384, "4k-16k"), (65536, "16k-64k"))
_MEMBER_LIMITS = ((2, "2"), (10, "3-10"), (100, "11-100"))


def telemetry_key(conversation_secret: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) with an all-zero salt: one 32-byte output block."""
    if not conversation_secret:
        raise ValueError("a conversation secret is needed")
    prk = hmac.new(b"\x00" * 32, conversation_secret, hashlib.sha256).digest()
    return hmac.new(prk, TELEMETRY_INFO + b"\x01", hashlib.sha256).digest()


def conv_ref(k_tel: bytes) -> str:
    return hmac.new(k_tel, b"conv", hashlib.sha256).digest()[:REF_BYTES].hex()


def msg_ref(k_tel: bytes, app_message_id: bytes) -> str:
    return hmac.digest(k_tel, b"msg" + app_message_id, "sha256")[:REF_BYTES].hex()


def new_id() -> str:
    """A random UUIDv4: install ids, session ids, event ids, batch ids."""
    return str(uuid.uuid4())


def size_bucket(size: int) -> str:
    for limit, name in _SIZE_LIMITS:
        if size < limit:
            return name
    return "gt64k"


def member_bucket(members: int) -> str:
    for limit, name in _MEMBER_LIMITS:
        if members <= limit:
            return name
    return "gt100"
