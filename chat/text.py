"""Rules for text that enters chinwag (REST API fields, typed or pasted text): what is not
Unicode text at all, and how to make it so. Pure functions, no I/O.

A Python `str` can hold surrogate code points (U+D800..U+DFFF). They are halves of UTF-16
pairs, not characters: UTF-8 cannot encode them, so protobuf, SQLite and every peer refuse
them. They arrive from JSON (`"\\ud800"` escapes are legal JSON), from bytes decoded with
`surrogateescape`/`surrogatepass`, or from a terminal paste. A high half directly followed by
a low half is the character they encode in UTF-16 and is joined into it; any other surrogate
is *lone* and has no meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

REPLACEMENT = "\ufffd"
"""What a lone surrogate becomes when text is repaired rather than refused."""


@dataclass(frozen=True, slots=True)
class LoneSurrogate:
    """Where text stops being Unicode: the first lone surrogate, after pairs are joined."""

    index: int
    """Its position in the text as `join_surrogate_pairs` returns it."""
    code_point: int

    def describe(self) -> str:
        """A phrase for error sentences: "a lone surrogate (U+D800) at character 5"."""
        return f"a lone surrogate (U+{self.code_point:04X}) at character {self.index + 1}"


def _is_unicode(text: str) -> bool:
    # Only surrogates make a str unencodable in UTF-8; the codec is the fast check.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def join_surrogate_pairs(text: str) -> str:
    """`text` with every high+low surrogate pair replaced by the character it encodes; lone
    surrogates stay as they are. Text without surrogates is returned unchanged."""
    if _is_unicode(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def find_lone_surrogate(text: str) -> LoneSurrogate | None:
    """The first lone surrogate of `join_surrogate_pairs(text)`, or None if it is Unicode."""
    joined = join_surrogate_pairs(text)
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError as exc:
        return LoneSurrogate(exc.start, ord(joined[exc.start]))
    return None


def is_unicode_text(text: str) -> bool:
    """Whether `text` can be stored and sent as it is (UTF-8 encodable; pairs count)."""
    return find_lone_surrogate(text) is None


def replace_lone_surrogates(text: str) -> str:
    """`text` made UTF-8 encodable: pairs joined, each lone surrogate replaced by U+FFFD.
    For text that must be kept whatever it holds (received, pasted); an API refuses instead."""
    joined = join_surrogate_pairs(text)
    if _is_unicode(joined):
        return joined
    return "".join(REPLACEMENT if 0xD800 <= ord(char) <= 0xDFFF else char for char in joined)


__all__ = [
    "REPLACEMENT",
    "LoneSurrogate",
    "find_lone_surrogate",
    "is_unicode_text",
    "join_surrogate_pairs",
    "replace_lone_surrogates",
]
