"""Our SDS against the real @waku/sds (tests/interop/sds, installed from its lockfile)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chat.reliability.bloom import BloomFilter
from chat.reliability.sds import (
    JS_DEFAULTS,
    Acknowledged,
    Delivered,
    HistoryEntry,
    SdsChannel,
    SdsFrame,
    SdsParams,
    content_message_id,
)

pytestmark = pytest.mark.interop
HARNESS = Path(__file__).parent / "sds"


class Oracle:
    def __init__(self) -> None:
        node = shutil.which("node")
        assert node, "the interop tests need Node.js >= 20 on PATH"
        assert (HARNESS / "node_modules" / "@waku" / "sds").is_dir(), (
            "the SDS harness is not installed: run `make test` (scripts/setup.sh --test)"
        )
        self.proc = subprocess.Popen(
            [node, "oracle.mjs"],
            cwd=HARNESS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the SDS oracle exited"
        answer: dict[str, Any] = json.loads(line)
        assert answer.pop("ok"), answer
        return answer

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def oracle() -> Iterator[Oracle]:
    o = Oracle()
    yield o
    o.close()


@pytest.mark.parametrize(("capacity", "error_rate"), [(10_000, 0.001), (400, 0.01), (200, 0.01)])
def test_bloom_bytes_are_identical(oracle: Oracle, capacity: int, error_rate: float) -> None:
    rng = random.Random(capacity)
    ids = [rng.randbytes(32).hex() for _ in range(150)] + ["sync-1", "x", "a b"]
    ours = BloomFilter(capacity, error_rate)
    for item in ids:
        ours.add(item)
    theirs = oracle.ask("bloom", capacity=capacity, errorRate=error_rate, ids=ids)
    assert theirs["kHashes"] == ours.hash_count and theirs["totalBits"] == ours.bits
    assert theirs["hex"] == ours.to_bytes().hex()


def test_our_default_channel_bloom_is_byte_identical_to_js(oracle: Oracle) -> None:
    # The bloom filter a default chinwag channel puts on the wire (400 ids, 1 %), filled to
    # capacity with our own and received ids, is the one @waku/sds builds from those ids.
    params = SdsParams()
    channel = SdsChannel("chat", "py", params)
    rng = random.Random(400)
    ids = []
    for i in range(params.bloom_capacity):
        if i % 10 == 0:
            content = f"own {i}".encode()
            mid = content_message_id(content)
            channel.wrap(content, mid, 1000 + i)
            channel.mark_sent(mid)
        else:
            mid = rng.randbytes(32).hex()
            channel.receive(SdsFrame("peer", mid, "chat", 1000 + i, (), b"", b"x"), 1000 + i)
        ids.append(mid)
    sync = channel.make_sync("sync-1", 5000)
    assert sync is not None and len(sync.bloom) == 504
    theirs = oracle.ask(
        "bloom", capacity=params.bloom_capacity, errorRate=params.bloom_error_rate, ids=ids
    )
    assert theirs["hex"] == sync.bloom.hex()


def test_message_ids_are_identical(oracle: Oracle) -> None:
    for text in ("hi", "", "ünïcödé", "x" * 1000):
        assert oracle.ask("messageId", text=text)["id"] == content_message_id(text.encode())


FRAMES = [
    SdsFrame("alice", "m1", "chat", 1_700_000_000_000, (), b"", b"hello"),
    SdsFrame(
        "alice",
        "m2",
        "chat",
        1_700_000_000_001,
        (HistoryEntry("m1", bytes(range(32))), HistoryEntry("m0")),
        bytes(504),
        b"world",
    ),
    SdsFrame("bob", "sync-7", "chat", 5, (HistoryEntry("m2"),), b"\x01" * 16, b""),
    SdsFrame("bob", "eph", "chat", None, (), b"", b"typing"),
]


@pytest.mark.parametrize("frame", FRAMES, ids=["content", "history", "sync", "ephemeral"])
def test_encodings_are_identical_both_ways(oracle: Oracle, frame: SdsFrame) -> None:
    js = oracle.ask(
        "encode",
        messageId=frame.message_id,
        channelId=frame.channel_id,
        senderId=frame.sender_id,
        lamport=frame.lamport,
        causalHistory=[
            {"messageId": e.message_id, "retrievalHint": e.retrieval_hint.hex() or None}
            for e in frame.causal_history
        ],
        bloom=frame.bloom.hex() or None,
        content=frame.content.hex() or None,
    )
    assert js["hex"] == frame.encode().hex()
    decoded = oracle.ask("decode", hex=frame.encode().hex())
    assert decoded["messageId"] == frame.message_id
    assert decoded["lamport"] == (None if frame.lamport is None else str(frame.lamport))
    assert decoded["causalHistory"] == [
        [e.message_id, e.retrieval_hint.hex()] for e in frame.causal_history
    ]
    assert decoded["content"] == frame.content.hex()


def _events(answer: dict[str, Any], name: str) -> list[Any]:
    return [e["detail"] for e in answer["events"] if e["name"] == name]


def test_a_js_channel_and_ours_exchange_and_acknowledge_both_ways(oracle: Oracle) -> None:
    oracle.ask("open", channelId="chat", senderId="js")
    ours = SdsChannel("chat", "py", JS_DEFAULTS)
    # @waku/sds starts its lamport clock at Date.now(), so ours runs on the same wall clock
    # (frames more than a day ahead of our clock are refused).
    start = time.time_ns() // 1_000_000

    # py -> js
    content = b"hello from python"
    mid = content_message_id(content)
    frame = ours.wrap(content, mid, start)
    ours.mark_sent(mid)
    answer = oracle.ask("receive", hex=frame.encode().hex())
    assert _events(answer, "delivered") == [mid]

    # js -> py: its history names our message, so we see it acknowledged
    sent = oracle.ask("send", text="hello from js")
    js_frame = SdsFrame.decode(bytes.fromhex(sent["hex"]))
    assert js_frame.message_id == sent["messageId"]
    events = ours.receive(js_frame, start + 500)
    assert Acknowledged(mid, "history") in events
    assert Delivered(js_frame) in events

    # py -> js again: our history names theirs, so js sees it acknowledged
    content2 = b"second from python"
    mid2 = content_message_id(content2)
    frame2 = ours.wrap(content2, mid2, start + 1000)
    ours.mark_sent(mid2)
    assert frame2.causal_history[-1].message_id == js_frame.message_id
    answer = oracle.ask("receive", hex=frame2.encode().hex())
    assert _events(answer, "acknowledged") == [js_frame.message_id]
    assert _events(answer, "delivered") == [mid2]


def test_js_reports_our_missing_dependency(oracle: Oracle) -> None:
    oracle.ask("open", channelId="gaps", senderId="js")
    ours = SdsChannel("gaps", "py", JS_DEFAULTS)
    first = ours.wrap(b"one", content_message_id(b"one"), 10)
    ours.mark_sent(first.message_id)
    second = ours.wrap(b"two", content_message_id(b"two"), 11)
    ours.mark_sent(second.message_id)
    answer = oracle.ask("receive", hex=second.encode().hex())
    assert _events(answer, "delivered") == []
    assert _events(answer, "missing") == [[first.message_id]]
    answer = oracle.ask("receive", hex=first.encode().hex())
    assert _events(answer, "delivered") == [first.message_id]
    swept = oracle.ask("sweep")
    assert _events(swept, "delivered") == [second.message_id]
    assert swept["missing"] == []
