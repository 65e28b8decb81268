"""Relay simulation benchmark: how many simulated node-seconds `chinwag lab sim` gets through
per second of wall and CPU time, and its peak memory per node.

One JSON line per network size. Each size runs in its own child process, so each peak RSS
is that run's own. Figures to report, never asserted: this is not a timed test.

    python tests/bench/sim.py [--nodes 1000 --nodes 10000] [--duration 60] [--publish-interval 0.5]

The load is a scenario like chat/lab/scenarios/relay-1000.toml (D = 8, 5 % loss), with
`duration` seconds of traffic after a 10 s warm-up; node-seconds count warm-up and settling.

The messenger mode (`--clients 100`, instead of relay sizes): real messengers over 4 simulated
service nodes as in chat/lab/scenarios/messenger-100.toml (5 % loss, churn, a partition),
`duration` seconds of traffic plus a 20 s warm-up and a 200 s settle; client-seconds per
wall-second and peak memory per client.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def measure(nodes: int, duration: float, interval: float, warmup: float) -> dict[str, object]:
    from chat.lab.relay_run import run_relay_scenario
    from chat.lab.scenario import Latency, RelayScenario

    scenario = RelayScenario(
        name=f"bench-{nodes}",
        nodes=nodes,
        warmup=warmup,
        duration=duration,
        settle=min(10.0, duration),
        publish_interval=interval,
        loss=0.05,
        latency=Latency(distribution="lognormal", median=0.04, sigma=0.6, low=0.005, high=0.4),
    )
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), time.process_time()
    report = run_relay_scenario(scenario)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    simulated = scenario.warmup + scenario.duration + scenario.settle
    messages = report["messages"]
    gossip = report["gossip"]
    assert isinstance(messages, dict) and isinstance(gossip, dict)
    return {
        "nodes": nodes,
        "simulated_s": simulated,
        "messages": messages["published"],
        "delivery_ratio": messages["delivery_ratio"],
        "frames": gossip["frames_sent"],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "node_seconds_per_wall_s": round(nodes * simulated / wall, 1),
        "node_seconds_per_cpu_s": round(nodes * simulated / cpu, 1),
        "frames_per_cpu_s": round(gossip["frames_sent"] / cpu),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "peak_rss_per_node_kb": round((peak_kb - baseline_kb) / nodes, 1),
    }


def measure_messenger(clients: int, duration: float, interval: float) -> dict[str, object]:
    # Run as a script, this file's directory comes first on sys.path, and its storage.py
    # would shadow the `storage` package the messengers use.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    from chat.lab.messenger_report import run_messenger_sim
    from chat.lab.messenger_scenario import load_messenger_scenario

    shipped = REPO / "chat" / "lab" / "scenarios" / "messenger-100.toml"
    scenario = load_messenger_scenario(
        shipped, clients=clients, duration=duration, message_interval=interval
    )
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), time.process_time()
    report = run_messenger_sim(scenario)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    simulated = scenario.warmup + scenario.duration + scenario.settle
    fates = report["fates"]
    network = report["network"]
    assert isinstance(fates, dict) and isinstance(network, dict)
    return {
        "clients": clients,
        "simulated_s": simulated,
        "messages": report["messages_sent"],
        "delivery_ratio": fates["delivery_ratio"],
        "frames": network["frames_sent"],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "client_seconds_per_wall_s": round(clients * simulated / wall, 1),
        "client_seconds_per_cpu_s": round(clients * simulated / cpu, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "peak_rss_per_client_kb": round((peak_kb - baseline_kb) / clients, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, action="append", help="network sizes")
    parser.add_argument(
        "--clients", type=int, action="append", help="messenger mode: client counts"
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of traffic")
    parser.add_argument("--publish-interval", type=float, default=0.5)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.clients or args.nodes or [1000, 10000]
    flag = "--clients" if args.clients else "--nodes"
    if args.child and args.clients:
        print(json.dumps(measure_messenger(sizes[0], args.duration, args.publish_interval)))
        return
    if args.child:
        print(json.dumps(measure(sizes[0], args.duration, args.publish_interval, args.warmup)))
        return
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for size in sizes:
        command = [sys.executable, __file__, "--child", flag, str(size)]
        command += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
        command += ["--publish-interval", str(args.publish_interval)]
        out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
