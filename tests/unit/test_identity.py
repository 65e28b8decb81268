from __future__ import annotations

import pytest
import vodozemac
from hypothesis import given
from hypothesis import strategies as st

from chat import bech32
from chat.identity import (
    FALLBACK_ROTATION,
    SAS_EMOJI,
    ContactLink,
    Identity,
    IdentityError,
    SasVerification,
    clean_link,
    format_chat_key,
    parse_chat_key,
    render_qr,
    sanitize_display_text,
)


@pytest.mark.parametrize(
    "valid",
    [
        "A1LQFN3A",
        "a1lqfn3a",
        "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
        "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
        "?1v759aa",
    ],
)
def test_bip350_valid_checksums(valid: str) -> None:
    text = valid.lower()
    prefix, _, rest = text.rpartition("1")
    groups = [bech32.CHARSET.index(c) for c in rest]
    assert bech32._polymod([*bech32._expand_prefix(prefix), *groups]) == bech32._BECH32M_CONST


@given(st.binary(min_size=32, max_size=32), st.integers(0, 50), st.sampled_from(bech32.CHARSET))
def test_chat_key_round_trips_and_any_single_typo_is_caught(
    key: bytes, position: int, replacement: str
) -> None:
    text = format_chat_key(key)
    assert text.startswith("cw1") and len(text) == 61
    assert parse_chat_key(text) == key
    assert parse_chat_key(text.upper()) == key
    index = 3 + position % (len(text) - 3)
    if text[index] != replacement:
        typo = text[:index] + replacement + text[index + 1 :]
        with pytest.raises(IdentityError):
            parse_chat_key(typo)


def test_contact_link_round_trip_and_tamper_detection() -> None:
    alice = Identity.create("Alice  Liddell", now=1000)
    assert alice.display_name == "Alice Liddell"
    link = alice.contact_link()
    parsed = ContactLink.parse(link[:40] + "\n  " + link[40:])  # pasted with a line break
    assert parsed.chat_key == alice.chat_key
    assert parsed.identity_key == alice.identity_key
    assert parsed.fallback_key == alice.fallback_key
    assert parsed.display_name == "Alice Liddell"
    assert parsed.chat_key_text == alice.chat_key_text
    for bad, fragment in [
        ("https://example.org", "not a chinwag contact link"),
        ("chinwag:!!!!", "damaged"),
        (link[:-10], "damaged|bad signature"),
        ("chinwag:" + "A" * 3000, "too long"),
    ]:
        with pytest.raises(IdentityError, match=fragment):
            ContactLink.parse(bad)
    # Flip one character in the middle of the body: the signature no longer matches.
    middle = len("chinwag:") + 30
    flipped = link[:middle] + ("B" if link[middle] != "B" else "C") + link[middle + 1 :]
    with pytest.raises(IdentityError):
        ContactLink.parse(flipped)


def test_a_link_copied_off_a_screen_with_its_box_and_wrapped_parses() -> None:
    """Rows selected in a terminal bring the box drawn around the link (and a scroll bar or
    a QR code beside it): box drawing and block characters are ignored like whitespace."""
    link = Identity.create("Alice", now=1000).contact_link()
    rows = [link[i : i + 72] for i in range(0, len(link), 72)]
    boxed = "\n".join(f"│  {row.ljust(72)}  │ ▀▄█ ▕" for row in rows)
    assert ContactLink.parse(boxed).chat_key_text == ContactLink.parse(link).chat_key_text
    assert clean_link(f"╭──╮\n{boxed}\n╰──╯") == link
    with pytest.raises(IdentityError, match="not a chinwag contact link"):
        ContactLink.parse(boxed.replace("│", "|"))  # other characters still count


def test_first_contact_is_an_olm_prekey_message_to_the_linked_fallback_key() -> None:
    alice = Identity.create("Alice", now=0)
    bob = Identity.create("Bob", now=0)
    link = ContactLink.parse(bob.contact_link())
    session = alice.account.create_outbound_session(
        vodozemac.Curve25519PublicKey.from_bytes(link.identity_key),
        vodozemac.Curve25519PublicKey.from_bytes(link.fallback_key),
    )
    message = session.encrypt(b"hi bob").to_pre_key()
    _, plaintext = bob.account.create_inbound_session(
        vodozemac.Curve25519PublicKey.from_bytes(alice.identity_key), message
    )
    assert plaintext == b"hi bob"


def test_fallback_rotation_keeps_the_previous_key_for_one_period() -> None:
    bob = Identity.create("Bob", now=0)
    old_link = ContactLink.parse(bob.contact_link())
    assert not bob.maybe_rotate_fallback(FALLBACK_ROTATION - 1)
    assert bob.maybe_rotate_fallback(FALLBACK_ROTATION)
    assert bob.fallback_key != old_link.fallback_key

    def first_contact(link: ContactLink) -> bytes:
        alice = Identity.create("Alice", now=0)
        session = alice.account.create_outbound_session(
            vodozemac.Curve25519PublicKey.from_bytes(link.identity_key),
            vodozemac.Curve25519PublicKey.from_bytes(link.fallback_key),
        )
        _, text = bob.account.create_inbound_session(
            vodozemac.Curve25519PublicKey.from_bytes(alice.identity_key),
            session.encrypt(b"hello").to_pre_key(),
        )
        return bytes(text)

    assert first_contact(old_link) == b"hello"  # grace period: the old link still works
    bob.maybe_rotate_fallback(2 * FALLBACK_ROTATION)
    with pytest.raises(vodozemac.SessionCreationException):
        first_contact(old_link)


def test_pickle_needs_the_right_key() -> None:
    alice = Identity.create("Alice", now=5)
    pickle = alice.pickle(bytes(range(32)))
    again = Identity.from_pickle(pickle, bytes(range(32)), "Alice", alice.fallback_key, 5)
    assert again.chat_key == alice.chat_key
    with pytest.raises(IdentityError):
        Identity.from_pickle(pickle, bytes(32), "Alice", alice.fallback_key, 5)


def test_sas_emoji_match_and_macs_verify() -> None:
    alice, bob = Identity.create("Alice", now=0), Identity.create("Bob", now=0)
    a = SasVerification(alice.chat_key, bob.chat_key)
    b = SasVerification(bob.chat_key, alice.chat_key)
    a.establish(b.public_key)
    b.establish(a.public_key)
    assert len(SAS_EMOJI) == 64
    assert a.emoji() == b.emoji() and len(a.emoji()) == 7
    b.verify_mac(a.mac())
    a.verify_mac(b.mac())
    mallory = Identity.create("Mallory", now=0)
    m = SasVerification(mallory.chat_key, alice.chat_key)
    m.establish(a.public_key)
    with pytest.raises(IdentityError):
        a.verify_mac(m.mac())
    with pytest.raises(IdentityError):
        SasVerification(alice.chat_key, bob.chat_key).emoji()
    with pytest.raises(IdentityError):
        SasVerification(alice.chat_key, bob.chat_key).establish("not a key")


def test_qr_renders_the_link_as_block_characters() -> None:
    link = Identity.create("Alice", now=0).contact_link()
    art = render_qr(link)
    lines = art.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert set(art) <= {" ", "▀", "▄", "█", "\n"}
    assert len(lines) >= 20


def test_a_link_cannot_carry_terminal_escapes_or_bidi_overrides_in_its_name() -> None:
    mallory = Identity.create("Mallory", 0)
    # Set behind the validator's back, as a hostile client would; the link is still signed.
    mallory.display_name = "Bob\x1b[2K\x1b]0;owned\x07\u202etxt.exe\ue000\U000e0041"
    name = ContactLink.parse(mallory.contact_link()).display_name
    assert name == "Bob[2K]0;ownedtxt.exe"
    mallory.display_name = "\u202e\u2066\x1b"
    assert ContactLink.parse(mallory.contact_link()).display_name == "unnamed"


@pytest.mark.parametrize(
    "text",
    [
        "Zoë Ångström",
        "日本語の名前",
        "Маша",
        "مریم\u200cالسادات",  # ZWNJ is part of Persian spelling
        "नमस्ते",
        "👨\u200d👩\u200d👧 family",  # ZWJ sequence
        "👍🏽 ❤\ufe0f",  # skin tone modifier, variation selector
        "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England's flag
        "\U0001fae8",  # an emoji newer than this Python's Unicode tables
    ],
)
def test_sanitizer_keeps_every_script_and_emoji(text: str) -> None:
    assert sanitize_display_text(text) == text
    assert Identity.create(text, 0).display_name == text


def test_sanitizer_drops_hidden_characters_and_keeps_chosen_line_breaks() -> None:
    assert sanitize_display_text("\u200dBob\u200d \u200c x\U000e0067y") == "Bob xy"
    assert sanitize_display_text("a\tb\r\nc\u2028d") == "a b c d"
    intro = "hi\r\n\n\n\nit's\x1b[31m me\u2029bye\x07"
    assert sanitize_display_text(intro, multiline=True) == "hi\n\nit's[31m me\nbye"
    with pytest.raises(IdentityError, match="empty"):
        Identity.create("\u202e\x1b", 0)


@given(st.text(max_size=80))
def test_sanitized_text_has_no_unsafe_characters(text: str) -> None:
    import unicodedata

    for multiline in (False, True):
        out = sanitize_display_text(text, multiline=multiline)
        assert sanitize_display_text(out, multiline=multiline) == out
        for char in out:
            category = unicodedata.category(char)
            if category in {"Cc", "Cf", "Co", "Cs"}:
                assert char in "\n\u200c\u200d" or 0xE0020 <= ord(char) < 0xE0080
            if category == "Cn":
                assert 0x1F000 <= ord(char) < 0x1FB00
