"""Help: the key bindings, and what each message glyph and health state means."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from ui.format import HEALTH_GLYPHS, STATE_GLYPHS, STATE_WORDS

KEYS = """\
| key | where | does |
|---|---|---|
| Ctrl+P | anywhere | command palette: every action by name (copy my link, change name…) |
| F1 | anywhere | this help |
| F2 | main | contacts: add by link, accept or decline requests, verify |
| F3 | main | outbox: everything not yet delivered; retry, retry all, discard |
| F4 | main | your contact link and its QR code; there **c** copies the link |
| F5 | main | new group: a name and the contacts to invite |
| F7 | main, in a group | members: add, remove, rename, make admin, leave (only what you may) |
| F7 | main, in a channel | the community: members, roles, its shard; moderation (what you may) |
| F9 | main | communities: new, join by link, channels, edit, leave, join requests |
| F6 | anywhere | dark / light theme |
| F8 | anywhere | bandwidth: bytes per protocol and relay message kind, lately and since start |
| F10 | anywhere | what we send: opt-in telemetry's level, queue, next batch byte for byte, fields |
| Ctrl+Q | anywhere | quit |
| Tab / Shift+Tab | main | move between chat list, conversation and composer |
| typing | chat list | goes to the composer |
| Alt+A | main | jump to the next chat with unread messages |
| Alt+Up / Alt+Down | main | previous / next chat |
| Ctrl+F | main | search messages (Ctrl+O: this chat / all); Enter opens the chat there |
| Enter | composer | send |
| Alt+Enter or Ctrl+J | composer | new line (Shift+Enter only where the terminal sends it) |
| Up / Down | composer | recall earlier messages (from the first / last line) |
| Esc | main | cancel a reply, unselect a message |
| Up / Down | conversation | select the previous / next message |
| PgUp / PgDn, Home / End | conversation | scroll; older messages load at the top |
| r | conversation | reply to the selected message |
| t | conversation | delivery trace of the selected (or last) message |
| Ctrl+R | main | not online: reconnect now; and retry the selected (or last failed) message |
| Ctrl+R | other screens | reconnect now: dial every known peer at once |
| a / d / c / v | contacts list | accept / decline / cancel request / verify |
| a / d / Enter | group invitations | accept / decline / open the group once joined |
| a / x / n / m / l | members | add / remove / rename / make admin / leave |
| n / j / l | communities | new community / join one by its link / its link |
| h / x | communities | add a channel (owner or admin) / leave (confirmed; not the owner) |
| e / r | communities | edit name and about / remove a channel (owner or admin; confirmed) |
| k / b / a / r | community members | kick / ban (each confirmed) / make admin / revoke admin |
| a / d / c | join requests | accept / decline (as owner or admin) / cancel my request |
| Enter / Ctrl+R | join dialog | look the link up (then send the request) / fetch again |
| y / n | verify | the emoji match / differ |
| y / n / Esc | verification request | compare the emoji now / decline / decide later |
| r / R / d / t | outbox | retry / retry all / discard / trace |
| p / h / r / o o | what we send | pause or resume / level health / reliability / turn off |
| y / n / s | telemetry question | yes / no / show what would be sent |
"""


def _glyph_table() -> str:
    rows = ["Your messages show their state between the time and your name.", ""]
    rows += ["| glyph | state |", "|---|---|"]
    for state, glyph in STATE_GLYPHS.items():
        if glyph:
            rows.append(f"| {glyph} | {STATE_WORDS[state]} |")
    rows.append("")
    rows.append(
        "In a group, the glyph is followed by how many members acknowledged the message: "
        "**✓✓ 3/5** is delivered, with 3 of the 5 members it was sent to acknowledging it "
        "(the other 2 left after it was sent, so it does not wait for them); **✓ 2/5** "
        "still waits for 3 members. The trace (t) lists who. A line starting with · "
        "is about the group (a join, a leave, a rename), not a message. In the chat list "
        "a group's name follows #. In a community channel (◆ in the chat list) your message "
        "shows **✓ seen by 3**: 3 members acknowledged it; a channel never claims "
        "delivered to everyone."
    )
    rows.append("")
    rows.append("| health | meaning |")
    rows.append("|---|---|")
    meanings = {
        "online": "connected to relay peers on every shard",
        "degraded": "connected, but some shard or service is missing",
        "offline": "no peers: messages wait in the outbox; chinwag redials every few "
        "seconds (the bar counts down; Ctrl+R dials now)",
        "sleeping": "the computer slept; catching up",
    }
    for status, glyph in HEALTH_GLYPHS.items():
        rows.append(f"| {glyph} {status} | {meanings[status]} |")
    return "\n".join(rows)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="dialog"):
            yield Markdown(f"# chinwag keys\n\n{KEYS}\n\n## Message states\n\n{_glyph_table()}")

    def action_close(self) -> None:
        self.dismiss(None)
