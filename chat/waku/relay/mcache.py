"""The gossipsub message cache: recent messages by id, in heartbeat windows.

Each entry keeps the ready-to-send frame, so IWANT answers never re-encode.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass(slots=True)
class CacheEntry:
    topic: str
    frame: bytes
    sent_to: dict[Hashable, int] = field(default_factory=dict)
    """How often each peer fetched this message by IWANT."""


class MessageCache:
    def __init__(self, history_length: int, history_gossip: int) -> None:
        if not 0 < history_gossip <= history_length:
            raise ValueError("need 0 < history_gossip <= history_length")
        self.history_gossip = history_gossip
        self._windows: list[list[bytes]] = [[] for _ in range(history_length)]
        self._entries: dict[bytes, CacheEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, message_id: bytes, topic: str, frame: bytes) -> None:
        if message_id in self._entries:
            return
        self._entries[message_id] = CacheEntry(topic, frame)
        self._windows[0].append(message_id)

    def remove(self, message_id: bytes) -> None:
        if self._entries.pop(message_id, None) is None:
            return
        for window in self._windows:
            if message_id in window:
                window.remove(message_id)
                return

    def get(self, message_id: bytes) -> CacheEntry | None:
        return self._entries.get(message_id)

    def gossip_ids(self) -> dict[str, list[bytes]]:
        """Ids in the most recent `history_gossip` windows, by topic."""
        by_topic: dict[str, list[bytes]] = {}
        for window in self._windows[: self.history_gossip]:
            for mid in window:
                entry = self._entries.get(mid)
                if entry is not None:
                    by_topic.setdefault(entry.topic, []).append(mid)
        return by_topic

    def shift(self) -> None:
        for mid in self._windows.pop():
            self._entries.pop(mid, None)
        self._windows.insert(0, [])
