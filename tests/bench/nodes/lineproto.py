"""The bench node protocol: JSON commands on stdin, JSON answers on stdout, one per line.

Every relay implementation in the benchmark (ours, py-libp2p's GossipSub, js-libp2p's)
runs as its own OS process speaking this, so the orchestrator treats them alike.

Commands: connect {addr} · subscribe {topic} · wait_mesh {topic, min} · publish {topic,
count, rate, size} · stats · reset · quit. A published payload starts with the send time
(8 bytes, ns, big-endian) and a sequence number (4 bytes), so the far end measures latency
on the same machine clock.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import trio

CONTENT_TOPIC = "/bench/1/relay/proto"


def make_payload(seq: int, size: int) -> bytes:
    head = time.time_ns().to_bytes(8, "big") + seq.to_bytes(4, "big")
    return head + b"\x00" * max(0, size - len(head))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Receiver:
    """Records arrivals; latency comes from the send time inside the payload."""

    latencies_ms: list[float] = field(default_factory=list)
    seqs: set[int] = field(default_factory=set)
    first_ns: int = 0
    last_ns: int = 0

    def record(self, payload: bytes) -> None:
        now = time.time_ns()
        if len(payload) < 12:
            return
        sent = int.from_bytes(payload[:8], "big")
        seq = int.from_bytes(payload[8:12], "big")
        if seq in self.seqs:
            return
        self.seqs.add(seq)
        self.latencies_ms.append((now - sent) / 1e6)
        self.first_ns = self.first_ns or now
        self.last_ns = now

    def stats(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "received": len(self.seqs),
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "p50_ms": statistics.median(lat) if lat else None,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
        }


async def commands() -> AsyncIterator[dict[str, Any]]:
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buf = b""
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


def answer(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()
