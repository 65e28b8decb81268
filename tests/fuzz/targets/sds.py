"""SDS frames and their bloom filter (chat/reliability/sds.py, bloom.py), as a channel with
history, outgoing messages and a waiting buffer receives them."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from chat.reliability.bloom import BloomFilter
from chat.reliability.sds import (
    MAX_HISTORY_ENTRIES,
    HistoryEntry,
    SdsChannel,
    SdsError,
    SdsFrame,
    SdsParams,
)
from fuzz.contract import Target, check, join_records, records, round_trip

CHANNEL = "chat-1"
NOW_MS = 1_700_000_000_000
PARAMS = SdsParams()


@cache
def channel_state() -> dict[str, Any]:
    """A channel that has sent two messages (one unacknowledged) and delivered one."""
    channel = SdsChannel(CHANNEL, "me", PARAMS)
    for index in range(2):
        frame = channel.wrap(f"mine {index}".encode(), f"mine-{index}", NOW_MS + index)
        channel.mark_sent(frame.message_id, bytes([index]) * 32)
    channel.receive(peer_frames()[0], NOW_MS + 5)
    return channel.export_state()


@cache
def peer_frames() -> list[SdsFrame]:
    peer = SdsChannel(CHANNEL, "peer", PARAMS)
    frames = []
    for index in range(3):
        frame = peer.wrap(f"theirs {index}".encode(), f"theirs-{index}", NOW_MS + index)
        peer.mark_sent(frame.message_id, bytes([index + 10]) * 32)
        frames.append(frame)
    acknowledging = SdsFrame(
        "peer",
        "theirs-3",
        CHANNEL,
        NOW_MS + 10,
        causal_history=(HistoryEntry("mine-0", b"\x00" * 32), HistoryEntry("missing", b"h")),
        bloom=frames[-1].bloom,
        content=b"needs mine-0",
    )
    frames.append(acknowledging)
    sync = peer.make_sync("sync-2", NOW_MS + 30)
    if sync is not None:
        frames.append(sync)
    frames.append(SdsFrame("peer", "eph", CHANNEL, None, content=b"typing"))
    return frames


def fuzz_sds(data: bytes) -> None:
    """Each record: two bytes of time step (ms), then a frame."""
    channel = SdsChannel.from_state(CHANNEL, "me", channel_state(), PARAMS)
    now = NOW_MS
    for record in records(data):
        now += int.from_bytes(record[:2], "big") * 100
        try:
            frame = SdsFrame.decode(record[2:])
        except SdsError:
            continue
        check(len(frame.causal_history) <= MAX_HISTORY_ENTRIES, "history over its bound")
        round_trip(frame, SdsFrame.decode(frame.encode()))
        try:
            channel.receive(frame, now, b"\x01" * 32)
        except SdsError:
            pass
        channel.give_up_waiting(now, 30_000)
        channel.missing()
    round_trip(
        channel.export_state(),
        SdsChannel.from_state(CHANNEL, "me", channel.export_state(), PARAMS).export_state(),
    )


def _seeds() -> Iterable[bytes]:
    frames = [f.encode() for f in peer_frames()]
    step = (10).to_bytes(2, "big")
    yield join_records(step + f for f in frames)
    yield join_records(step + f for f in reversed(frames))
    yield join_records([b"\xff\xff" + frames[3], step + frames[0]])


def fuzz_bloom(data: bytes) -> None:
    try:
        bloom = BloomFilter.from_bytes(data, PARAMS.bloom_capacity, PARAMS.bloom_error_rate)
    except ValueError:
        return
    check(bloom.to_bytes() == data, "a bloom filter does not re-encode to its bytes")
    "mine-0" in bloom  # noqa: B015 (the lookup is what is exercised)


def _bloom_seeds() -> Iterable[bytes]:
    bloom = BloomFilter(PARAMS.bloom_capacity, PARAMS.bloom_error_rate)
    yield bloom.to_bytes()
    bloom.add("mine-0")
    yield bloom.to_bytes()


TARGETS = (
    Target(
        name="sds_frames",
        decoder="chat.reliability.sds.SdsFrame.decode, then SdsChannel.receive, "
        "give_up_waiting, export_state/from_state",
        contract="SdsError only; frames round-trip; the channel's state round-trips",
        fuzz=fuzz_sds,
        seeds=_seeds,
        max_len=8192,
        weight=0.5,
    ),
    Target(
        name="sds_bloom",
        decoder="chat.reliability.bloom.BloomFilter.from_bytes",
        contract="ValueError only (wrong size); re-encodes to the same bytes",
        fuzz=fuzz_bloom,
        seeds=_bloom_seeds,
        max_len=1024,
    ),
)
