"""How the TUI words and draws the messenger's views: state glyphs, times, reasons.

Pure functions of views and an injected `now`, so the words a user sees are unit-tested and
every screen says the same thing the same way.
"""

from __future__ import annotations

import datetime as dt
import math

from chat.events import ChatView, ContactView, HealthView, MessageView, OutboxItemView

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
    """The short honest status after an outgoing message: glyph, and for anything not yet
    confirmed the reason and what happens next."""
    if not message.outgoing:
        return ""
    glyph = state_glyph(message.state)
    if message.state == "failed":
        reason = message.state_reason or "no reason given"
        return f"{glyph} failed: {reason} ({RETRY_KEY} retries)"
    if message.state == "queued" and (message.attempts or message.state_reason):
        parts = [glyph]
        if message.state_reason:
            parts.append(message.state_reason + ";")
        retrying = f"retrying {in_how_long(message.next_attempt_at, now)}"
        attempts = attempts_text(message.attempts, message.max_attempts, message.budget)
        parts.append(f"{retrying}, {attempts}" if attempts else retrying)
        return " ".join(parts)
    return glyph


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


def passphrase_strength(passphrase: str) -> tuple[int, str]:
    """A rough 0-4 score and a hint. Length counts most: a long sentence beats symbols."""
    if not passphrase:
        return 0, "empty"
    pools = 0
    pools += 26 if any(c.islower() for c in passphrase) else 0
    pools += 26 if any(c.isupper() for c in passphrase) else 0
    pools += 10 if any(c.isdigit() for c in passphrase) else 0
    pools += 33 if any(not c.isalnum() for c in passphrase) else 0
    distinct = len(set(passphrase))
    bits = min(len(passphrase), distinct * 2) * math.log2(max(pools, 2))
    if bits < 40:
        return 1, "weak: use a longer sentence of several words"
    if bits < 60:
        return 2, "fair: a few more words would help"
    if bits < 80:
        return 3, "good"
    return 4, "strong"
