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
    format_chat_key,
    parse_chat_key,
    render_qr,
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
