"""Relay benchmark: three nodes in a line (A - B - C), one OS process each.

For each implementation, in the same run:
- burst: A publishes as fast as it can; far-end (C) throughput, and CPU per message at C
  (received) and at B (relayed);
- paced: A publishes at 300 msg/s; C's end-to-end latency p50/p99.

Implementations: `chinwag` (ours), `py-libp2p` (its own GossipSub, as close to Waku relay
as its public API allows), `js-libp2p` (@chainsafe/libp2p-gossipsub configured like
@waku/relay, in Node). One JSON object per implementation per line, then a summary line
with ratios. Figures to report, never asserted: this is not a timed test.

    python tests/bench/relay.py [--quick] [--impl chinwag --impl py-libp2p ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TOPIC = "/waku/2/rs/42/0"
PAYLOAD_SIZE = 200


def _impl_commands() -> dict[str, list[str]]:
    py = sys.executable
    commands = {
        "chinwag": [py, str(HERE / "nodes" / "chinwag_node.py")],
        "py-libp2p": [py, str(HERE / "nodes" / "pylibp2p_node.py")],
    }
    interop = REPO / "tests" / "interop"
    js_dir = interop / "gossipsub14"
    node = shutil.which("node")
    if node and (js_dir / "node_modules").is_dir():
        commands["js-libp2p"] = [
            node,
            "--import",
            (interop / "common" / "polyfill.mjs").as_uri(),
            str(js_dir / "bench_node.mjs"),
        ]
    return {name: cmd for name, cmd in commands.items() if Path(cmd[-1]).exists()}


class Node:
    def __init__(self, command: list[str], name: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.name = name
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=REPO,
        )
        ready = self._read()
        self.addrs: list[str] = ready["addrs"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench node {self.name} exited (code {self.proc.poll()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def ask(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        try:
            self.ask("quit")
        except (RuntimeError, BrokenPipeError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wait_delivery(
    far: Node, expected: int, idle_s: float = 3.0, cap_s: float = 120.0
) -> dict[str, Any]:
    """Poll the far end until everything arrived or nothing new came for `idle_s`."""
    deadline = time.monotonic() + cap_s
    last_count, last_change = -1, time.monotonic()
    while True:
        stats = far.ask("stats")
        if stats["received"] != last_count:
            last_count, last_change = stats["received"], time.monotonic()
        if stats["received"] >= expected or time.monotonic() - last_change > idle_s:
            return stats
        if time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def run_impl(name: str, command: list[str], burst: int, paced: int, rate: int) -> dict[str, Any]:
    nodes = [Node(command, f"{name}-{tag}") for tag in "ABC"]
    a, b, c = nodes
    try:
        b.ask("connect", addr=a.addrs[0])
        b.ask("connect", addr=c.addrs[0])
        for node in nodes:
            node.ask("subscribe", topic=TOPIC)
        a.ask("wait_mesh", topic=TOPIC, min=1)
        b.ask("wait_mesh", topic=TOPIC, min=2)
        c.ask("wait_mesh", topic=TOPIC, min=1)
        # Warm-up, so connection setup and first-message costs do not skew the figures.
        a.ask("publish", topic=TOPIC, count=50, rate=100, size=PAYLOAD_SIZE, seq_base=10_000_000)
        _wait_delivery(c, 50, idle_s=2)
        for node in nodes:
            node.ask("reset")

        before_b, before_c = b.ask("stats"), c.ask("stats")
        start_ns = time.time_ns()
        published = a.ask("publish", topic=TOPIC, count=burst, rate=0, size=PAYLOAD_SIZE)
        burst_stats = _wait_delivery(c, burst)
        after_a, after_b, after_c = (n.ask("stats") for n in nodes)
        burst_drops = _total_drops([after_a, after_b, after_c])
        delivered = burst_stats["received"]
        elapsed = max(1e-9, (burst_stats["last_ns"] - start_ns) / 1e9) if delivered else None
        cpu_c = after_c["cpu_s"] - before_c["cpu_s"]
        cpu_b = after_b["cpu_s"] - before_b["cpu_s"]

        for node in nodes:
            node.ask("reset")
        a.ask("publish", topic=TOPIC, count=paced, rate=rate, size=PAYLOAD_SIZE, seq_base=1_000_000)
        paced_stats = _wait_delivery(c, paced)
        paced_drops = _total_drops([n.ask("stats") for n in nodes])
        return {
            "impl": name,
            "sent": burst,
            "delivered": delivered,
            "drops_counted": burst_drops,
            "throughput_msgs_per_s": round(delivered / elapsed, 1) if elapsed else 0.0,
            "p50_ms": _round(paced_stats["p50_ms"]),
            "p99_ms": _round(paced_stats["p99_ms"]),
            "cpu_ms_per_received": _round(1000 * cpu_c / delivered) if delivered else None,
            "cpu_ms_per_relayed": _round(1000 * cpu_b / delivered) if delivered else None,
            "peak_rss_mb": _round(max(n.ask("stats")["rss_mb"] for n in nodes)),
            "paced_rate": rate,
            "paced_sent": paced,
            "paced_delivered": paced_stats["received"],
            "paced_drops_counted": paced_drops,
            "middle_relayed": after_b.get("relayed"),
            "publisher_reached": published.get("reached"),
            "publisher_waits_given_up": published.get("waits_given_up"),
        }
    finally:
        for node in nodes:
            node.close()


def _total_drops(stats: list[dict[str, Any]]) -> int | None:
    """Drops all three nodes counted since the last reset; None if an impl cannot count."""
    drops = [s.get("drops") for s in stats]
    return None if any(d is None for d in drops) else sum(d for d in drops if d is not None)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ours = results.get("chinwag")
    summary: dict[str, Any] = {}
    if not ours:
        return summary
    for other in ("py-libp2p", "js-libp2p"):
        theirs = results.get(other)
        if not theirs:
            continue
        ratios = {}
        for key in (
            "throughput_msgs_per_s",
            "p50_ms",
            "p99_ms",
            "cpu_ms_per_received",
            "cpu_ms_per_relayed",
        ):
            mine, their = ours.get(key), theirs.get(key)
            ratios[key] = round(mine / their, 3) if mine and their else None
        summary[f"ours/{other}"] = ratios
    summary["chinwag_delivered_all"] = (
        ours["delivered"] == ours["sent"] and ours["paced_delivered"] == ours["paced_sent"]
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for CI")
    parser.add_argument("--burst", type=int, help="messages in the burst")
    parser.add_argument("--paced", type=int, help="messages in the paced run")
    parser.add_argument("--rate", type=int, default=300, help="paced rate, msg/s")
    parser.add_argument("--impl", action="append", help="only these implementations")
    args = parser.parse_args(argv)
    burst = args.burst or (300 if args.quick else 5000)
    paced = args.paced or (300 if args.quick else 3000)
    available = _impl_commands()
    chosen = args.impl or list(available)
    missing = [name for name in chosen if name not in available]
    if missing:
        print(json.dumps({"error": f"implementation(s) not available: {missing}"}))
        return 2
    results = {}
    for name in chosen:
        results[name] = run_impl(name, available[name], burst, paced, args.rate)
        print(json.dumps(results[name]), flush=True)
    print(json.dumps({"summary": summarize(results)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
