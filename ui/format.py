"""How the TUI words and draws the messenger's views: state glyphs, times, reasons.

Pure functions of views and an injected `now`, so the words a user sees are unit-tested and
every screen says the same thing the same way.
"""

from __future__ import annotations

import datetime as dt
import math

from rich.cells import cell_len

from chat.events import ChatView, ContactView, HealthView, MessageView, OutboxItemView
from ui.host import NetworkSetup

# Outgoing states, in the order evidence arrives (docs/architecture.md §6). Each glyph is one
# cell wide so columns line up; the word is shown wherever there is room.
STATE_GLYPHS: dict[str, str] = {
    "queued": "◷",
    "sent": "↑",
    "stored": "✓",
    "delivered": "✓✓",
    "failed": "✗",
    "received": "",
}
STATE_WORDS: dict[str, str] = {
    "queued": "queued: saved, not on the wire yet",
    "sent": "sent: relayed to at least one peer",
    "stored": "stored: a store node has it",
    "delivered": "delivered: your contact acknowledged it",
    "failed": "failed",
    "received": "received",
}
HEALTH_GLYPHS: dict[str, str] = {
    "online": "●",
    "degraded": "◐",
    "offline": "○",
    "sleeping": "☾",
}
RETRY_KEY = "ctrl+r"
RECONNECT_KEY = "ctrl+r"


def state_glyph(state: str) -> str:
    return STATE_GLYPHS.get(state, "?")


def clock(timestamp: float) -> str:
    """Local wall-clock time of day, HH:MM."""
    return dt.datetime.fromtimestamp(timestamp).strftime("%H:%M")


def day_key(timestamp: float) -> dt.date:
    return dt.datetime.fromtimestamp(timestamp).date()


def day_label(day: dt.date, today: dt.date) -> str:
    if day == today:
        return "Today"
    if day == today - dt.timedelta(days=1):
        return "Yesterday"
    return day.strftime("%A %d %B %Y")


def in_how_long(at: float | None, now: float) -> str:
    """'in 20 s', 'in 3 min', 'now' — for the next retry of something."""
    if at is None:
        return "not scheduled"
    seconds = at - now
    if seconds <= 0.5:
        return "now"
    if seconds < 90:
        return f"in {math.ceil(seconds)} s"
    if seconds < 90 * 60:
        return f"in {math.ceil(seconds / 60)} min"
    return f"in {math.ceil(seconds / 3600)} h"


def attempts_text(attempts: int, max_attempts: int, budget: str = "attempt") -> str:
    """'attempt 3 of 8', 're-send 2 of 12' (the budget a message spends now); '' before the
    first one."""
    if not attempts:
        return ""
    if max_attempts:
        return f"{budget} {attempts} of {max_attempts}"
    return f"{budget} {attempts}"


def retry_notice(message: MessageView) -> str:
    """What a manual retry did, in a sentence."""
    if message.state == "queued" and message.state_reason == "no peers":
        return (
            "Queued again with a fresh budget. There is no peer right now: it goes as soon "
            "as chinwag reconnects."
        )
    return "Retrying now."


def reconnect_notice(health: HealthView) -> str:
    """What Ctrl+R (reconnect now) did, in a sentence."""
    if health.dialing:
        peers = "peer" if health.dialing == 1 else "peers"
        return f"Reconnecting now: dialling {health.dialing} {peers}."
    return f"Connected to {health.peers} of the peers chinwag knows; nothing more to dial now."


def message_status(message: MessageView, now: float) -> str:
    """The short honest status of an outgoing message: glyph, and for anything not yet
    confirmed the reason and what happens next."""
    if not message.outgoing:
        return ""
    glyph = state_glyph(message.state)
    detail = state_detail(message, now)
    return f"{glyph} {detail}" if detail else glyph


def state_detail(message: MessageView, now: float) -> str:
    """What follows the glyph of an outgoing message that failed or waits to be retried:
    the reason and what happens next; "" for the others."""
    if not message.outgoing:
        return ""
    if message.state == "failed":
        reason = message.state_reason or "no reason given"
        return f"failed: {reason} ({RETRY_KEY} retries)"
    if message.state == "queued" and (message.attempts or message.state_reason):
        parts = []
        if message.state_reason:
            parts.append(message.state_reason + ";")
        retrying = f"retrying {in_how_long(message.next_attempt_at, now)}"
        attempts = attempts_text(message.attempts, message.max_attempts, message.budget)
        parts.append(f"{retrying}, {attempts}" if attempts else retrying)
        return " ".join(parts)
    return ""


EMOJI_CELL = 11
"""Columns per emoji (and its name, up to 10 characters) in the verification row."""


def emoji_grid(emoji: list[tuple[str, str]], width: int) -> str:
    """The verification emoji with their names: a row of emoji over a row of names when
    `width` columns hold them, else one "emoji name" per line.

    Emoji with a variation selector (☁️, ❤️, ✂️ ...) are drawn without it: Rich counts
    such a pair two cells wide, tmux and many terminals one, and the difference moved the
    rest of the line (the box's border). Without it every emoji is as wide everywhere."""
    shown = [(glyph.replace("\ufe0f", ""), name) for glyph, name in emoji]
    if len(shown) * EMOJI_CELL <= width:
        top = "".join(_centred(glyph, EMOJI_CELL) for glyph, _ in shown)
        bottom = "".join(_centred(name, EMOJI_CELL) for _, name in shown)
        return f"{top.rstrip()}\n{bottom.rstrip()}"
    return "\n".join(f"{glyph}{' ' * (3 - cell_len(glyph))}{name}" for glyph, name in shown)


def _centred(text: str, width: int) -> str:
    left = (width - cell_len(text)) // 2
    return " " * left + text + " " * (width - cell_len(text) - left)


def chat_label(chat: ChatView) -> str:
    return chat.name or (chat.peer_chat_key or chat.id)[:16]


def reconnect_text(health: HealthView, now: float) -> str | None:
    """While no peer is connected: when chinwag dials again, and the key that dials now."""
    if health.peers or not health.known_peers:
        return None
    if health.next_dial_at is None and not health.dialing:
        return None
    seconds = 0.0 if health.next_dial_at is None else health.next_dial_at - now
    if health.dialing or seconds <= 0.5:
        return "reconnecting…"
    return f"reconnecting in {math.ceil(seconds)} s ({RECONNECT_KEY}: now)"


def health_summary(health: HealthView, now: float | None = None) -> str:
    """The health bar's line; with `now`, while offline, when chinwag dials again."""
    glyph = HEALTH_GLYPHS.get(health.status, "?")
    shards = " ".join(
        f"{_shard_name(topic)}:{count}" for topic, count in sorted(health.peers_per_shard.items())
    )
    if health.store_reachable is None:
        store = "store ?"
    else:
        store = "store ✓" if health.store_reachable else "store ✗"
    parts = [f"{glyph} {health.status}"]
    reconnect = reconnect_text(health, now) if now is not None else None
    if reconnect:
        parts[0] += f", {reconnect}"
    parts.append(f"peers {health.peers}")
    if shards:
        parts.append(shards)
    parts.extend([store, f"outbox {health.outbox}"])
    return "  │  ".join(parts)


def _shard_name(pubsub_topic: str) -> str:
    """'/waku/2/rs/42/0' → 's0'; anything else unchanged."""
    prefix, _, shard = pubsub_topic.rpartition("/")
    if prefix.startswith("/waku/2/rs/") and shard.isdigit():
        return f"s{shard}"
    return pubsub_topic


CONTACT_STATE_WORDS: dict[str, str] = {
    "request_sent": "request sent, waiting for them",
    "request_received": "wants to chat with you",
    "mutual": "contact",
    "declined": "declined",
    "cancelled": "cancelled",
    "expired": "request expired",
}


def contact_state(contact: ContactView, now: float) -> str:
    words = CONTACT_STATE_WORDS.get(contact.state, contact.state.replace("_", " "))
    if contact.state == "request_sent":
        words += f"; sent {contact.sends}×, next {in_how_long(contact.next_send_at, now)}"
    if contact.state == "mutual" and contact.verified:
        words += " ✔ verified"
    return words


def outbox_row(item: OutboxItemView, now: float) -> tuple[str, str, str, str, str, str]:
    kind = "message" if item.kind == "message" else "contact request"
    return (
        kind,
        item.summary,
        f"{state_glyph(item.state)} {item.state}",
        item.reason or "",
        attempts_text(item.attempts, item.max_attempts, item.budget) or "—",
        in_how_long(item.next_attempt_at, now) if item.state != "failed" else "—",
    )


MIN_PASSPHRASE_SCORE = 2
"""Onboarding refuses a weaker passphrase unless "use it anyway" is ticked."""


def passphrase_strength(passphrase: str) -> tuple[int, str]:
    """A rough 0-4 score and a hint. The estimate, in bits: the number of characters
    (each distinct character counted at most twice, so "aaaaaaaa" is not long) times
    log2 of the alphabet they come from (26 lower case, 26 upper case, 10 digits, 33
    others, for each kind present). Under 50 bits is weak (fewer than 11 lower-case
    letters), under 65 fair, under 80 good. Length counts most: a sentence beats symbols."""
    if not passphrase:
        return 0, "empty"
    pools = 0
    pools += 26 if any(c.islower() for c in passphrase) else 0
    pools += 26 if any(c.isupper() for c in passphrase) else 0
    pools += 10 if any(c.isdigit() for c in passphrase) else 0
    pools += 33 if any(not c.isalnum() for c in passphrase) else 0
    distinct = len(set(passphrase))
    bits = min(len(passphrase), distinct * 2) * math.log2(max(pools, 2))
    if bits < 50:
        return 1, "weak: use a longer sentence of several words"
    if bits < 65:
        return 2, "fair: a few more words would help"
    if bits < 80:
        return 3, "good"
    return 4, "strong"


def split_message(text: str, limit: int) -> list[str]:
    """`text` as messages of at most `limit` characters, in order, cut at the last line
    break (else space) that keeps a part within the limit, else hard; nothing is dropped
    but the break characters the cuts fall on."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = window.rfind("\n")
        if cut <= 0:
            cut = window.rfind(" ")
        if cut <= 0:
            parts.append(rest[:limit])
            rest = rest[limit:]
        else:
            parts.append(rest[:cut])
            rest = rest[cut + 1 :]
    if rest.strip():
        parts.append(rest)
    return [part for part in parts if part.strip()]


def no_peers_hint(setup: NetworkSetup) -> str:
    """What to do when no peer is configured and none was found: where to add one."""
    lan = "on (none found yet)" if setup.lan_discovery else "off"
    return (
        f"No peers yet: add a node's address to [network] peers in {setup.config_file}, "
        f"or start chinwag with --peer ADDRESS or --fleet FILE. LAN discovery is {lan}."
    )


def stopped_hint(reason: str, setup: NetworkSetup) -> str:
    """The network part stopped: what it means, and where the details are."""
    return (
        f"The network part stopped: {reason}. Nothing is sent or received until chinwag "
        f"starts again (Ctrl+Q, then chinwag); your messages wait in your profile. Details "
        f"are in the log file {setup.log_file}."
    )
