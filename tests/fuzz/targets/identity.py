"""What people paste and peers announce about themselves (chat/identity.py, chat/bech32.py):
contact links, chat keys, and the display text every name and message goes through."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import cache

from chat.identity import (
    MAX_DISPLAY_NAME,
    ContactLink,
    Identity,
    IdentityError,
    format_chat_key,
    parse_chat_key,
    sanitize_display_text,
)
from fuzz.contract import Target, check, round_trip


@cache
def identity() -> Identity:
    return Identity.create("Ada Lovelace 👩‍💻", 0)


def fuzz_contact_link(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    try:
        link = ContactLink.parse(text)
    except IdentityError:
        return
    for key in (link.chat_key, link.identity_key, link.fallback_key):
        check(len(key) == 32, "a key that is not 32 bytes")
    name = link.display_name
    check(0 < len(name) <= MAX_DISPLAY_NAME, f"display name {name!r}")
    check(sanitize_display_text(name) == name, f"display name {name!r} is not sanitised")
    round_trip(link.chat_key, parse_chat_key(link.chat_key_text))


def _link_seeds() -> Iterable[bytes]:
    link = identity().contact_link()
    yield link.encode()
    yield ("  " + link[:40] + "\n" + link[40:] + "\n").encode()  # pasted across lines
    yield Identity.create("x", 0).contact_link().encode()


def fuzz_chat_key(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    try:
        key = parse_chat_key(text)
    except IdentityError:
        return
    round_trip(key, parse_chat_key(format_chat_key(key)))


UNSAFE = frozenset({"Cc", "Cs", "Co"})


def fuzz_display_text(data: bytes) -> None:
    """Every name, intro and message from a peer is shown through this; nothing that can
    steer a terminal may survive it, and applying it twice changes nothing."""
    text = data.decode("utf-8", errors="replace")
    for multiline in (False, True):
        shown = sanitize_display_text(text, multiline=multiline)
        allowed = {"\n"} if multiline else set()
        for char in shown:
            check(
                unicodedata.category(char) not in UNSAFE or char in allowed,
                f"{char!r} survives in {shown!r}",
            )
        check(sanitize_display_text(shown, multiline=multiline) == shown, "not idempotent")


TARGETS = (
    Target(
        name="contact_link",
        decoder="chat.identity.ContactLink.parse (text: pasted, scanned, or carried in "
        "requests and answers)",
        contract="IdentityError only; keys are 32 bytes; the display name is sanitised and "
        "bounded; the chat key round-trips",
        fuzz=fuzz_contact_link,
        seeds=_link_seeds,
        tokens=(b"chinwag:", b"cw1"),
    ),
    Target(
        name="chat_key",
        decoder="chat.identity.parse_chat_key (bech32m, chat/bech32.py)",
        contract="IdentityError only; round trip",
        fuzz=fuzz_chat_key,
        seeds=lambda: [
            identity().chat_key_text.encode(),
            identity().chat_key_text.upper().encode(),
        ],
        max_len=256,
    ),
    Target(
        name="display_text",
        decoder="chat.identity.sanitize_display_text (names, intros, messages from peers)",
        contract="never raises; no control, surrogate or private-use character survives; "
        "idempotent",
        fuzz=fuzz_display_text,
        seeds=lambda: [
            "Ada\x1b]0;pwned\x07 \u202eevil".encode(),
            "family 👨\u200d👩\u200d👧 flag 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067"
            "\U000e007f".encode(),
            b"line one\r\nline two\n\n\n\nline three\x85",
        ],
        max_len=1024,
    ),
)
