"""Contact-request spam as an attacker sends it: one request from each of many fresh
identities, crafted exactly as a chinwag client seals a request (an Olm pre-key message to
the recipient's fallback key, carrying the sender's own signed link), so nothing on the way
or at the recipient can tell it from a genuine one until it is counted."""

from __future__ import annotations

import time

from chat.direct import DirectSessions, contact_request_content_topic, request_payload
from chat.identity import ContactLink, Identity
from chat.waku.message import WakuMessage

INTRO = "hello! I found your link online, please add me"


def crafted_requests(
    recipient_link: str, count: int, intro: str = INTRO, *, request_id: str | None = None
) -> list[bytes]:
    """`count` WakuMessage payloads: a contact request to the owner of `recipient_link` from
    a new identity each (with `request_id` if given, else a valid one of its own)."""
    link = ContactLink.parse(recipient_link)
    payloads = []
    for i in range(count):
        spammer = Identity.create(f"Friendly {i}", time.time())
        own_id = f"{i:x}-{i:016x}" if request_id is None else request_id
        payload = request_payload(spammer.contact_link(), intro, own_id)
        payloads.append(DirectSessions(spammer).seal_first(link, payload).encode())
    return payloads


def on_partition(recipient_link: str, payload: bytes, timestamp_ns: int) -> WakuMessage:
    """A payload as it travels: on the recipient's contact-request partition."""
    chat_key = ContactLink.parse(recipient_link).chat_key
    return WakuMessage(
        payload=payload,
        content_topic=contact_request_content_topic(chat_key),
        timestamp=timestamp_ns,
    )
