"""chat.text: what is not Unicode text (lone surrogates), and how text is made so."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.text import (
    REPLACEMENT,
    LoneSurrogate,
    find_lone_surrogate,
    is_unicode_text,
    join_surrogate_pairs,
    replace_lone_surrogates,
)

SMILE = "\U0001f600"
SMILE_PAIR = "\ud83d\ude00"
"""The same character as two surrogate code points (what CESU-8 or `\\ud83d\\ude00` give)."""


@pytest.mark.parametrize(
    ("text", "lone"),
    [
        ("", None),
        ("hello, мир 世界 " + SMILE, None),
        (SMILE_PAIR, None),
        ("a\ud800", LoneSurrogate(1, 0xD800)),
        ("\udfff", LoneSurrogate(0, 0xDFFF)),
        ("\ude00\ud83d", LoneSurrogate(0, 0xDE00)),  # low before high is no pair
        ("ok " + SMILE_PAIR + " \ud83d", LoneSurrogate(5, 0xD83D)),  # after joining
    ],
)
def test_finding_lone_surrogates(text: str, lone: LoneSurrogate | None) -> None:
    assert find_lone_surrogate(text) == lone
    assert is_unicode_text(text) is (lone is None)


def test_pairs_are_joined_and_lone_ones_replaced() -> None:
    assert join_surrogate_pairs("a" + SMILE_PAIR + "b") == "a" + SMILE + "b"
    assert join_surrogate_pairs("a\ud800") == "a\ud800"
    plain = "nothing to do " + SMILE
    assert join_surrogate_pairs(plain) is plain
    assert replace_lone_surrogates("\udc00x" + SMILE_PAIR + "\ud83d") == (
        f"{REPLACEMENT}x{SMILE}{REPLACEMENT}"
    )
    assert LoneSurrogate(4, 0xD800).describe() == "a lone surrogate (U+D800) at character 5"


SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)


@given(st.text(alphabet=st.one_of(st.characters(), SURROGATES)))
def test_repaired_text_always_encodes_and_unicode_text_is_kept(text: str) -> None:
    repaired = replace_lone_surrogates(text)
    repaired.encode("utf-8")  # never raises
    if is_unicode_text(text):
        assert repaired == join_surrogate_pairs(text)
    else:
        assert REPLACEMENT in repaired
