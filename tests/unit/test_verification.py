from __future__ import annotations

import pytest

from chat.verification import Verification, VerificationError, VerifyState

A, B = b"a" * 32, b"b" * 32


def pair() -> tuple[Verification, Verification]:
    alice = Verification(A, B)
    bob = Verification(B, A, alice.verification_id)
    bob.their_key(alice.sas.public_key)
    alice.their_key(bob.sas.public_key)
    return alice, bob


def test_both_confirming_verifies_both_whatever_order_the_macs_arrive_in() -> None:
    alice, bob = pair()
    assert alice.emoji == bob.emoji and len(alice.emoji) == 7
    bob.their_confirmation(alice_mac := alice.confirm())  # bob has not confirmed yet: kept
    assert bob.state is VerifyState.COMPARE
    alice.their_confirmation(bob.confirm())
    assert alice.state is bob.state is VerifyState.VERIFIED
    assert alice_mac


def test_a_mac_from_another_secret_fails_the_verification() -> None:
    alice, bob = pair()
    mallory, _ = pair()
    alice.confirm()
    alice.their_confirmation(mallory.confirm())
    assert alice.state is VerifyState.FAILED
    assert bob.state is VerifyState.COMPARE


def test_confirming_before_the_keys_are_exchanged_is_refused() -> None:
    with pytest.raises(VerificationError):
        Verification(A, B).confirm()
