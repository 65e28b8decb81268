"""How the TUI words and draws the messenger's views: state glyphs, times, reasons.

Pure functions of views and an injected `now`, so the words a user sees are unit-tested and
every screen says the same thing the same way.
"""

from __future__ import annotations

import datetime as dt
import math

from rich.cells import cell_len

from chat.events import (
    BandwidthLineView,
    BandwidthView,
    ChatView,
    ContactView,
    GroupMemberView,
    GroupView,
    HealthView,
    InviteView,
    MessageView,
    OutboxItemView,
    TraceStep,
)
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
    if seconds < 48 * 3600:
        return f"in {math.ceil(seconds / 3600)} h"
    return f"in {math.ceil(seconds / 86_400)} d"


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


GROUP_MARK = "#"
"""Before a group's name in the chat list and the title: which chats are groups."""


def delivery_count(message: MessageView) -> str:
    """'3/5': how many of an outgoing group message's recipients acknowledged it; '' for a
    received message or one not counted (queued, no recipients recorded)."""
    if not message.outgoing or not message.recipients or message.state == "queued":
        return ""
    return f"{len(message.delivered_to)}/{message.recipients}"


def group_delivery(message: MessageView) -> str:
    """An outgoing group message's state in words, with the members' count."""
    count = delivery_count(message)
    if not count:
        return STATE_WORDS.get(message.state, message.state)
    acknowledged, recipients = count.split("/")
    words = f"acknowledged by {acknowledged} of the {recipients} members it was sent to"
    if message.state == "delivered":
        if acknowledged != recipients:
            words += " (the others left since: not waited for)"
        return f"delivered: {words}"
    return f"{message.state}: {words}"


def group_status(message: MessageView) -> str:
    """The state column of a group message: '✓✓ 3/5' (glyph and count), '◷' while queued."""
    glyph = state_glyph(message.state) if message.outgoing else ""
    count = delivery_count(message)
    return f"{glyph.ljust(2)} {count}" if count else glyph


MEMBER_STATE_WORDS: dict[str, str] = {
    "joined": "member",
    "invited": "invited, not answered yet",
    "expired": "invitation expired",
    "declined": "declined the invitation",
    "left": "left",
    "removed": "removed",
}


def member_state(member: GroupMemberView) -> str:
    return MEMBER_STATE_WORDS.get(member.state, member.state)


def member_name(member: GroupMemberView) -> str:
    return member.display_name or member.chat_key[:16]


def group_title(group: GroupView) -> str:
    """'# Friends  ·  group of 4' (with our own state when we are no longer in it)."""
    joined = sum(1 for m in group.members if m.state == "joined")
    invited = sum(1 for m in group.members if m.state == "invited")
    words = f"{GROUP_MARK} {group.name}  ·  group of {joined}"
    if invited:
        words += f", {invited} invited"
    if group.my_state == "left":
        words += "  ·  you left"
    elif group.my_state == "removed":
        words += "  ·  you were removed"
    return words


def invite_state(invite: InviteView, now: float) -> str:
    """An invitation's state as a sentence fragment, with what happens next."""
    received = invite.direction == "received"
    if invite.state == "invited":
        if received:
            return f"waiting for your answer; expires {in_how_long(invite.expires_at, now)}"
        return (
            f"waiting for them; sent {invite.sends}×, next {in_how_long(invite.next_send_at, now)}"
        )
    if invite.state == "failed":
        return f"failed: {invite.reason or 'no reason given'}"
    words = {
        "joined": "you joined" if received else "they joined",
        "declined": "you declined" if received else "they declined",
        "expired": "expired: nobody answered in time",
        "cancelled": "withdrawn by the inviter" if received else "you withdrew it",
    }
    return words.get(invite.state, invite.state)


def invite_who(invite: InviteView, names: dict[str, str]) -> str:
    """'Bob invited you' / 'you invited Carol', with the names we know."""
    if invite.direction == "received":
        return f"{names.get(invite.from_) or invite.from_[:16]} invited you"
    return f"you invited {names.get(invite.to) or invite.to[:16]}"


ACKNOWLEDGED = "✓✓ acknowledged"
MISSING = "… missing"
NOT_WAITED_FOR = "left: not waited for"


def recipient_states(
    message: MessageView, steps: list[TraceStep], group: GroupView | None
) -> list[tuple[str, str]]:
    """Each recipient of an outgoing group message (chat key) with whether they
    acknowledged it, are missing, or left after it was sent (not waited for).

    The view names who acknowledged; the latest acknowledgement step of the trace names who
    was missing then (at most 20); a message no one has acknowledged yet went to the group's
    other members as they are now (the member list it was committed with, unless it changed
    since)."""
    acknowledged = list(message.delivered_to)
    named: list[str] = []
    gone: set[str] = set()
    for step in reversed(steps):
        if "missing" in step.evidence or "not_waited_for" in step.evidence:
            named.extend(_keys(step.evidence.get("missing")))
            gone.update(_keys(step.evidence.get("not_waited_for")))
            named.extend(sorted(gone))
            break
    members = {m.chat_key: m for m in group.members} if group is not None else {}
    known = set(acknowledged)
    others = [key for key in dict.fromkeys(named) if key not in known]
    known.update(others)
    for member in members.values():  # nobody named yet: the group's other members now
        if len(known) >= message.recipients:
            break
        if member.state == "joined" and member.chat_key not in known | {message.sender}:
            others.append(member.chat_key)
            known.add(member.chat_key)
    rows = [(key, ACKNOWLEDGED) for key in acknowledged]
    for key in others:
        now = members.get(key)
        left = key in gone or (now is not None and now.state in ("left", "removed"))
        rows.append((key, NOT_WAITED_FOR if left else MISSING))
    return rows


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
    if health.light_line:  # light mode: the service nodes held stand for relay peers
        parts.extend([health.light_line, f"outbox {health.outbox}"])
        return "  │  ".join(parts)
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
    kind = {"message": "message", "group_invite": "group invitation"}.get(
        item.kind, "contact request"
    )
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


def _keys(value: object) -> list[str]:
    return [str(key) for key in value] if isinstance(value, list) else []


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


BANDWIDTH_NAMES = {
    "lightpush": "light push",
    "contact_request": "contact requests",
    "join_request": "join requests",
    "sync": "receipts, SDS sync",
    "control": "gossip control",
    "message": "other messages",
    "chat": "chat messages",
}


def byte_size(count: float) -> str:
    """A byte count for people: 0 B, 812 B, 4.1 kB, 12 MB (powers of 1000, as rates)."""
    for unit in ("B", "kB", "MB", "GB"):
        if count < 999.5 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" or count >= 9.95 else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.0f} GB"  # not reached


def byte_rate(per_second: float) -> str:
    return "·" if per_second < 0.5 else f"{byte_size(per_second)}/s"


def bandwidth_row(line: BandwidthLineView, *, messages: bool) -> tuple[str, ...]:
    """name, in and out over the last minute, the last hour, since start (and messages)."""
    row: tuple[str, ...] = (
        BANDWIDTH_NAMES.get(line.name, line.name),
        byte_rate(line.minute_in),
        byte_rate(line.minute_out),
        byte_rate(line.hour_in),
        byte_rate(line.hour_out),
        byte_size(line.bytes_in),
        byte_size(line.bytes_out),
    )
    if messages:
        row += (f"{line.messages_in} / {line.messages_out}",)
    return row


def bandwidth_summary(view: BandwidthView) -> str:
    """One line: the connections' totals and rates, and the share of Noise/muxer framing."""
    wire = view.wire
    overhead = view.transport.bytes_in + view.transport.bytes_out
    total = wire.bytes_in + wire.bytes_out
    share = f"{100 * overhead / total:.0f} %" if total else "·"
    return (
        f"Since start ({in_words(view.uptime)}): in {byte_size(wire.bytes_in)}, out "
        f"{byte_size(wire.bytes_out)}; last minute in {byte_rate(wire.minute_in)}, out "
        f"{byte_rate(wire.minute_out)}. Connection framing (Noise, muxer): {share}."
    )


def in_words(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
