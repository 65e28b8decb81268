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
from chat.waku.enr.waku_fields import Capability, RelayShards, WakuPeer
from chat.waku.lightpush.client import push_once
from chat.waku.message import WakuMessage, now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.protected import ShardKeyPair
from chat.waku.ratelimit import RateLimit
from chat.waku.service_node import DEFAULT_RETENTION, ServiceNode, ServiceNodeConfig
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


def test_peer_exchange_is_served_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    config = configure(tmp_path)
    assert config.peer_exchange and config.rate_limits["px"] == RateLimit(10, 1.0)
    assert configure(tmp_path, "--rate-limit", "px:2/1s").rate_limits["px"] == RateLimit(2, 1.0)
    assert not configure(tmp_path, "--no-peer-exchange").peer_exchange
    wss = "/dns4/node.example.org/tcp/443/wss"
    announced = configure(tmp_path, "--ext-multiaddr", "/ip4/203.0.113.5/tcp/60000",
                          "--ext-multiaddr", wss).announce  # fmt: skip
    assert [str(a) for a in announced] == ["/ip4/203.0.113.5/tcp/60000", wss]
    # The record announces the shards the node relays, a protected one included.
    key = "029c5fac802da41e07e6cdf51c3b9a6351ad5e65921527f2df5b7d59fd9b56ab02"
    node = ServiceNode(configure(tmp_path, "--shard", "0", "--protected-shard", f"7:{key}"))
    assert node.peer_exchange is not None
    assert node.peer_exchange.shards == RelayShards(42, (0, 7))


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


def test_a_postgresql_archive_is_a_url_and_sqlite_stays_the_default(tmp_path: Path) -> None:
    url = "postgresql://chinwag:secret@db.example:5432/archive"
    config = configure(tmp_path, "--store", "--archive", url, "--retention-bytes", "10GB")
    assert config.store is not None and config.store.archive_url == url
    assert config.store.archive_location == url
    assert config.store.retention.max_bytes == 10 * 10**9
    default = configure(tmp_path, "--store")
    assert default.store is not None and default.store.archive_url is None
    assert default.store.archive_location == tmp_path / "node" / "archive.sqlite"


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
        (("--ext-multiaddr", "node.example.org"), "--ext-multiaddr node.example.org is not a"),
        (
            ("--ext-multiaddr", "/ip4/1.2.3.4/udp/9000"),
            "--ext-multiaddr /ip4/1.2.3.4/udp/9000 must be a TCP address",
        ),
        (
            (
                "--ext-multiaddr",
                "/ip4/1.2.3.4/tcp/1/p2p/16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ",
            ),
            "--ext-multiaddr /ip4/1.2.3.4/tcp/1/p2p/"
            "16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ must not end in /p2p/<peer id>",
        ),
        (
            ("--ext-multiaddr", "/ip4/1.2.3.4/tcp/1", "--no-peer-exchange"),
            "--ext-multiaddr goes into the node's record: drop --no-peer-exchange",
        ),
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
            lines = await read_lines_until(proc, "enr ")
            header, addrs, url = lines[0], lines[1:-2], lines[-2].split(" ", 1)[1]
            assert header.endswith("services relay,store,sync,filter,lightpush,px")
            record = WakuPeer.from_text(lines[-1].removeprefix("enr "))
            assert record.capabilities == Capability.RELAY | Capability.STORE | (
                Capability.FILTER | Capability.LIGHTPUSH
            )
            assert [str(a) for a in record.dial_addrs] == [addrs[0]]
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
    assert before["chinwag_px_known_records"] == 0  # peer exchange runs, knows nobody yet
    assert after['chinwag_lightpush_requests_total{version="v3",status="505"}'] == 1
    assert after["chinwag_connected_peers"] == 1
    assert (tmp_path / "node" / "archive.sqlite").exists()


SHARD_KEY = ShardKeyPair.from_hex(
    "5526a8990317c9b7b58d07843d270f9cd1d9aaee129294c1c478abf7261dd9e6"
)
PUBKEY = SHARD_KEY.public_key.to_hex()


def test_protected_shards_are_served_and_keyed(tmp_path: Path) -> None:
    other = ShardKeyPair.generate().public_key
    config = configure(
        tmp_path,
        "--protected-shard", f"7:{PUBKEY}",
        "--protected-shard", f"/waku/2/rs/42/9:0x{other.to_hex(compressed=False)}",
        "--protected-shard", f"7:{SHARD_KEY.public_key.to_hex(compressed=False)}",  # same key
    )  # fmt: skip
    assert config.protected == {"/waku/2/rs/42/7": SHARD_KEY.public_key, "/waku/2/rs/42/9": other}
    assert config.node.shards == (0, 1, 7, 9)  # protecting a shard means serving it
    assert configure(tmp_path, "--shard", "7", "--protected-shard", f"7:{PUBKEY}").node.shards == (
        7,
    )


def test_protected_shards_from_the_config_file_unless_flags_are_given(tmp_path: Path) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'[network]\nprotected_shards = ["12:{PUBKEY}"]\n')
    base = ["--config", str(config_file), "--data-dir", str(tmp_path), "node"]
    loaded = load_config(config_file=config_file, data_dir=tmp_path)
    from_file = service_config_from(build_parser().parse_args(base), loaded)
    assert from_file.protected == {"/waku/2/rs/42/12": SHARD_KEY.public_key}
    assert 12 in from_file.node.shards
    flags = build_parser().parse_args([*base, "--protected-shard", f"13:{PUBKEY}"])
    assert list(service_config_from(flags, loaded).protected) == ["/waku/2/rs/42/13"]
    config_file.write_text('[network]\nprotected_shards = ["12"]\n')
    broken = load_config(config_file=config_file, data_dir=tmp_path)
    with pytest.raises(UserError, match=r"^network.protected_shards in .*config.toml: 12 must be"):
        service_config_from(build_parser().parse_args(base), broken)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("7", "it needs a shard and a key separated by a colon"),
        (f":{PUBKEY}", "it needs a shard and a key separated by a colon"),
        ("7:", "it needs a shard and a key separated by a colon"),
        (f"seven:{PUBKEY}", "the shard 'seven' is not a number 0-1023"),
        (f"1024:{PUBKEY}", "the shard '1024' is not a number 0-1023"),
        (f"-1:{PUBKEY}", "the shard '-1' is not a number 0-1023"),
        (f"/waku/2/rs/16/32:{PUBKEY}", "/waku/2/rs/16/32 is not in this node's cluster 42"),
        (f"/waku/2/rs/42:{PUBKEY}", "/waku/2/rs/42 is not a /waku/2/rs/<cluster>/<shard> topic"),
        ("7:zz", "the key is not a secp256k1 public key (public key is not hexadecimal)"),
        ("7:02ab", "the key is not a secp256k1 public key (a public key is 33 or 65 bytes, not 2)"),
        ("7:02" + "ff" * 32, "the key is not a secp256k1 public key (those bytes are not a point"),
        (f"7:{SHARD_KEY.secret_hex()}", "the key is not a secp256k1 public key (a public key is"),
    ],
)
def test_a_malformed_protected_shard_is_one_sentence(
    tmp_path: Path, value: str, problem: str
) -> None:
    with pytest.raises(UserError) as caught:
        configure(tmp_path, f"--protected-shard={value}")
    sentence = str(caught.value)
    assert sentence.startswith(f"--protected-shard {value} must be SHARD:PUBKEY (a shard number")
    assert f", but {problem}" in sentence
    assert "\n" not in sentence


def test_one_shard_cannot_have_two_keys(tmp_path: Path) -> None:
    other = ShardKeyPair.generate().public_key.to_hex()
    with pytest.raises(UserError, match="names shard /waku/2/rs/42/7 twice with different keys"):
        configure(tmp_path, "--protected-shard", f"7:{PUBKEY}", "--protected-shard", f"7:{other}")


def test_a_malformed_protected_shard_exits_2_with_the_sentence(tmp_path: Path) -> None:
    argv = ["--data-dir", str(tmp_path), "node", "--protected-shard", "7:nothex"]
    done = subprocess.run(
        [sys.executable, "-m", "chat.cli", *argv], capture_output=True, text=True, timeout=DEADLINE
    )
    assert done.returncode == 2
    assert done.stderr.startswith("chinwag: --protected-shard 7:nothex must be SHARD:PUBKEY")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_sync_is_on_with_a_store_and_configurable(tmp_path: Path) -> None:
    from chat.waku.sync.service import SyncOptions

    assert configure(tmp_path).sync is None
    assert configure(tmp_path, "--store").sync == SyncOptions()
    assert configure(tmp_path, "--store", "--no-sync").sync is None
    tuned = configure(tmp_path, "--store", "--sync-interval", "30s", "--sync-window", "2h").sync
    assert tuned is not None and (tuned.interval, tuned.window) == (30, 7200)
    assert configure(tmp_path, "--rate-limit", "sync:5/1m").rate_limits["sync"] == RateLimit(
        5, 60.0
    )
    for options, message in [
        (("--sync",), "--sync needs --store"),
        (("--sync-interval", "1m"), "only makes sense with --store"),
        (("--store", "--no-sync", "--sync-window", "1h"), "only makes sense"),
        (("--store", "--sync-interval", "soon"), "--sync-interval soon must be"),
    ]:
        with pytest.raises(UserError, match=message):
            configure(tmp_path, *options)


def test_an_unreachable_postgresql_archive_stops_the_node_without_showing_the_password(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chat.cli", "--data-dir", str(tmp_path), "node",
         "--listen", "/ip4/127.0.0.1/tcp/0", "--store",
         "--archive", "postgresql://chinwag:hunter2@127.0.0.1:1/archive"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "the archive cannot be opened" in done.stderr
    assert "postgresql://chinwag@127.0.0.1:1/archive" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
