"""Verify a contact in person: both of you see the same emoji if, and only if, each has the
other's true chat key.

The emoji come from a hash of the two chat keys (sorted, so both sides compute the same
sequence), 6 bits per emoji from the Matrix SAS emoji table. Compare them face to face or on
a call you trust; a mismatch means the link you added was not really theirs.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from chat.events import ContactView
from chat.identity import SAS_EMOJI

EMOJI_COUNT = 7


def comparison_emoji(own_chat_key: str, their_chat_key: str) -> list[tuple[str, str]]:
    """Seven (emoji, name) pairs that both sides derive identically from their two keys."""
    first, second = sorted([own_chat_key, their_chat_key])
    digest = hashlib.sha256(f"chinwag-verify-v1|{first}|{second}".encode()).digest()
    bits = int.from_bytes(digest[:6], "big")  # 48 bits: 7 × 6 = 42 used
    return [SAS_EMOJI[(bits >> (42 - 6 * (i + 1))) & 0x3F] for i in range(EMOJI_COUNT)]


class VerifyScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close"),
    ]

    def __init__(self, own_chat_key: str, contact: ContactView) -> None:
        super().__init__()
        self.own_chat_key = own_chat_key
        self.contact = contact

    def compose(self) -> ComposeResult:
        emoji = comparison_emoji(self.own_chat_key, self.contact.chat_key)
        name = self.contact.display_name or self.contact.chat_key
        with Vertical(id="verify-box", classes="dialog"):
            yield Static(f"Verify {name}", classes="dialog-title", markup=False)
            yield Static(
                "Meet or call them, and compare: they open Verify for you and must see exactly "
                "these emoji, in this order.",
                markup=False,
            )
            yield Static("   ".join(e for e, _ in emoji), id="verify-emoji", markup=False)
            yield Static("   ".join(n for _, n in emoji), id="verify-names", markup=False)
            yield Static(
                "Same emoji: the link you added really is theirs. Different: do not trust this "
                "contact; ask them for their link again in person.",
                classes="muted",
                markup=False,
            )
            yield Static("Esc closes", classes="muted")

    def action_close(self) -> None:
        self.dismiss(None)
