"""`chinwag node` as a service node: option parsing (mistakes are sentences), and a real
subprocess with every service and /metrics that stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
from multiaddr import Multiaddr

from chat.cli import build_parser
from chat.commands.node import service_config_from
from chat.config import load_config
from chat.errors import UserError
from chat.waku.lightpush.client import push_once
from chat.waku.message import WakuMessage, now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.ratelimit import RateLimit
from chat.waku.service_node import DEFAULT_RETENTION, ServiceNodeConfig
from chat.waku.topics import RelayShard
from storage.archive import RetentionPolicy

Scrape = Callable[[str], Awaitable[dict[str, float]]]
DEADLINE = 30


def configure(tmp_path: Path, *options: str) -> ServiceNodeConfig:
    argv = ["--data-dir", str(tmp_path), "node", "--listen", "/ip4/127.0.0.1/tcp/0", *options]
    args = build_parser().parse_args(argv)
    return service_config_from(args, load_config(data_dir=tmp_path))


def test_defaults_are_relay_only(tmp_path: Path) -> None:
    config = configure(tmp_path)
    assert (config.store, config.filter, config.lightpush, config.metrics) == (
        None,
        False,
        False,
        None,
    )
    # Every service a node may run is rate-limited unless the operator lifts it (issue 13).
    assert config.rate_limits["filter"] == RateLimit(30, 60.0)
    assert config.rate_limits["store"] == RateLimit(50, 1.0)
    assert config.rate_limits["lightpush"] == RateLimit(30, 1.0)
    assert config.node.max_connections == 300
    limits = config.node.inbound_limits
    assert (limits.max_pending, limits.max_pending_per_source, limits.max_open_per_source) == (
        64,
        8,
        64,
    )


def test_a_store_keeps_a_week_in_at_most_a_gigabyte_by_default(tmp_path: Path) -> None:
    config = configure(tmp_path, "--store")
    assert config.store is not None
    assert config.store.retention == RetentionPolicy(max_age_ns=7 * 86_400 * 10**9, max_bytes=10**9)
    assert config.store.retention == DEFAULT_RETENTION  # the library's default too


def test_none_lifts_a_retention_limit_on_purpose(tmp_path: Path) -> None:
    config = configure(
        tmp_path, "--store", "--retention-age", "none", "--retention-bytes", "NONE",
        "--retention-messages", "none",
    )  # fmt: skip
    assert config.store is not None and config.store.retention == RetentionPolicy()


def test_connection_limit_flags(tmp_path: Path) -> None:
    config = configure(
        tmp_path, "--max-connections", "50", "--max-connections-per-ip", "5",
        "--max-pending-connections", "200", "--max-pending-per-ip", "20",
    )  # fmt: skip
    limits = config.node.inbound_limits
    assert config.node.max_connections == 50
    assert (limits.max_pending, limits.max_pending_per_source, limits.max_open_per_source) == (
        200,
        20,
        5,
    )


def test_trusted_proxies_are_addresses_or_networks(tmp_path: Path) -> None:
    config = configure(tmp_path, "--trusted-proxy", "127.0.0.1", "--trusted-proxy", "fd00::/8")
    assert config.node.inbound_limits.trusted_proxies == ("127.0.0.1", "fd00::/8")
    with pytest.raises(UserError, match=r"--trusted-proxy.*'proxy\.local' is not an IP"):
        configure(tmp_path, "--trusted-proxy", "proxy.local")


def test_a_node_with_fewer_connections_than_py_libp2p_s_watermarks_starts(tmp_path: Path) -> None:
    # py-libp2p refused a maximum below its own watermarks (300 and 100): `--max-connections
    # 50` stopped the node with a ValueError before it started.
    config = configure(tmp_path, "--max-connections", "50")
    assert Node(config.node).host.inbound.max_connections == 50


def test_every_service_and_its_options(tmp_path: Path) -> None:
    config = configure(
        tmp_path,
        "--store", "--retention-age", "7d", "--retention-messages", "100000",
        "--retention-bytes", "500MB", "--filter", "--lightpush",
        "--rate-limit", "store:20/1s", "--rate-limit", "lightpush:10/1m",
        "--metrics", "0.0.0.0:8008",
    )  # fmt: skip
    assert config.store is not None
    assert config.store.archive_path == tmp_path / "node" / "archive.sqlite"
    assert config.store.retention == RetentionPolicy(
        max_age_ns=7 * 86_400 * 10**9, max_messages=100_000, max_bytes=500 * 10**6
    )
    assert config.filter and config.lightpush
    assert config.rate_limits["store"] == RateLimit(20, 1.0)
    assert config.rate_limits["lightpush"] == RateLimit(10, 60.0)
    assert config.metrics == ("0.0.0.0", 8008)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--retention-age", "12h"), RetentionPolicy(max_age_ns=12 * 3600 * 10**9)),
        (("--retention-age", "90m"), RetentionPolicy(max_age_ns=90 * 60 * 10**9)),
        (("--retention-age", "2w"), RetentionPolicy(max_age_ns=14 * 86_400 * 10**9)),
        (("--retention-bytes", "2GiB"), RetentionPolicy(max_bytes=2 * 2**30)),
        (("--retention-bytes", "1048576"), RetentionPolicy(max_bytes=2**20)),
        (("--retention-bytes", "64 kb"), RetentionPolicy(max_bytes=64_000)),
    ],
)
def test_retention_units(
    tmp_path: Path, options: tuple[str, ...], expected: RetentionPolicy
) -> None:
    # Each limit given is parsed; the others keep their defaults (lifted here to compare).
    others = [flag for flag in ("--retention-age", "--retention-bytes") if flag not in options]
    lifted = [a for flag in others for a in (flag, "none")]
    config = configure(tmp_path, "--store", *options, *lifted)
    assert config.store is not None and config.store.retention == expected


def test_archive_path_and_metrics_shorthands(tmp_path: Path) -> None:
    config = configure(tmp_path, "--store", "--archive", "x.sqlite", "--metrics", "9100")
    assert config.store is not None and config.store.archive_path == Path("x.sqlite")
    assert config.metrics == ("127.0.0.1", 9100)
    assert configure(tmp_path, "--metrics", "[::1]:0").metrics == ("::1", 0)


@pytest.mark.parametrize(
    ("options", "sentence"),
    [
        (("--rate-limit", "store:20"), "a --rate-limit value is not valid: 'store:20' is not"),
        (("--rate-limit", "relay:1/1s"), "a --rate-limit value is not valid: unknown protocol"),
        (("--rate-limit", "store:0/1s"), "a --rate-limit value is not valid: rate limit needs"),
        (("--rate-limit", "store:of"), "a --rate-limit value is not valid: 'store:of' is not"),
        (("--store", "--retention-age", "7"), "--retention-age 7 must be a positive number"),
        (("--store", "--retention-age", "0d"), "--retention-age 0d must be a positive number"),
        (("--store", "--retention-bytes", "lots"), "--retention-bytes lots must be a positive"),
        (("--store", "--retention-messages", "-5"), "--retention-messages -5 must be a positive"),
        (("--retention-age", "7d"), "--retention-age only makes sense with --store"),
        (("--archive", "a.sqlite"), "--archive only makes sense with --store"),
        (("--metrics", "localhost:http"), "--metrics localhost:http must be HOST:PORT or PORT"),
        (("--metrics", "127.0.0.1:70000"), "--metrics 127.0.0.1:70000 must be HOST:PORT"),
    ],
)
def test_mistakes_are_sentences(tmp_path: Path, options: tuple[str, ...], sentence: str) -> None:
    with pytest.raises(UserError) as caught:
        configure(tmp_path, *options)
    assert str(caught.value).startswith(sentence)


def test_a_mistake_exits_2_with_the_sentence(tmp_path: Path) -> None:
    argv = ["--data-dir", str(tmp_path), "node", "--rate-limit", "store=20/s"]
    done = subprocess.run(
        [sys.executable, "-m", "chat.cli", *argv], capture_output=True, text=True, timeout=DEADLINE
    )
    assert done.returncode == 2
    assert done.stderr.startswith("chinwag: a --rate-limit value is not valid: 'store=20/s'")
    assert "Traceback" not in done.stderr


async def read_lines_until(proc: trio.Process, prefix: str) -> list[str]:
    assert proc.stdout is not None
    buf = b""
    while not any(line.startswith(prefix) for line in buf.decode().splitlines()):
        chunk = await proc.stdout.receive_some(4096)
        assert chunk, f"node exited early: {buf!r}"
        buf += chunk
    return buf.decode().splitlines()


async def test_service_node_subprocess_serves_metrics_and_stops_on_sigterm(
    tmp_path: Path, scrape: Scrape
) -> None:
    cmd = [sys.executable, "-m", "chat.cli", "--data-dir", str(tmp_path), "node",
           "--listen", "/ip4/127.0.0.1/tcp/0", "--store", "--filter", "--lightpush",
           "--retention-age", "1d", "--rate-limit", "lightpush:5/1s",
           "--metrics", "127.0.0.1:0"]  # fmt: skip
    with trio.fail_after(DEADLINE):
        proc = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE)
        try:
            lines = await read_lines_until(proc, "metrics ")
            header, addrs, url = lines[0], lines[1:-1], lines[-1].split(" ", 1)[1]
            assert header.endswith("services relay,store,filter,lightpush")
            assert addrs and all("/p2p/16Uiu2" in a for a in addrs)
            assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
            before = await scrape(url)
            # Light push is mounted: with no relay peer the node says so (505).
            probe = Node(NodeConfig(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")]))
            async with probe.run():
                peer = await probe.host.dial(addrs[0])
                msg = WakuMessage(b"hi", "/chinwag/1/cli/proto", timestamp=now_ns())
                shard0 = RelayShard(42, 0).pubsub_topic
                attempt = await push_once(probe.host.libp2p, peer, msg, shard0)
                after = await scrape(url)
            proc.send_signal(signal.SIGTERM)
            assert proc.stdout is not None
            tail = b""
            while chunk := await proc.stdout.receive_some(4096):
                tail += chunk
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
    assert proc.returncode == 0
    assert "chinwag node stopped" in tail.decode()
    assert attempt.status_code == 505
    assert before["chinwag_archive_messages"] == 0
    assert before["chinwag_connected_peers"] == 0
    assert after['chinwag_lightpush_requests_total{version="v3",status="505"}'] == 1
    assert after["chinwag_connected_peers"] == 1
    assert (tmp_path / "node" / "archive.sqlite").exists()
