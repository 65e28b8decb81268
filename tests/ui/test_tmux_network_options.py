"""`chinwag --fleet FILE` and `chinwag tui --peer ADDR` connect the chat screen the way
`chinwag serve --fleet FILE` connects a headless client. Real processes: a service node
(`chinwag node --store`) on a cluster of its own (7, which neither the defaults nor the config
file name, so only the options can lead there), Bob as `chinwag serve --fleet FILE`, Alice's
TUI in a private tmux server. Alice's screen says online, the node meshes both clients on
the fleet's cluster, and a contact request from Bob reaches Alice's chat list."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from harness.processes import PASSPHRASE, Chinwag
from harness.tmux import Tmux, chinwag_script
from harness.waiting import wait_until

from chat.config import PASSPHRASE_ENV

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

CLUSTER = 7
NOBODY = "/ip4/127.0.0.1/tcp/9/p2p/16Uiu2HAmCz7rRsmWvRr3cf1HmMEQDNYxMeuC8EsgHGdZTvXqSEzM"
"""A peer no one runs (the discard port): what the config file names, and must not win."""
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def config_text(cluster: int, peers: list[str]) -> str:
    listed = ", ".join(f'"{p}"' for p in peers)
    network = f"[network]\ncluster_id = {cluster}\npeers = [{listed}]\n"
    return network + "\n[notifications]\nbell = false\n"


def gone(screen: str) -> bool:
    return "Pane is dead" in screen or "● online" not in screen


async def test_the_chat_ui_takes_a_fleet_file_and_peers_like_serve(tmp_path: Path) -> None:
    net = Chinwag(tmp_path / "net")
    alice_dir = Chinwag(tmp_path / "alice")
    tmux = Tmux(tmp_path / "tmux.sock", {})
    again = Tmux(tmp_path / "again.sock", {})  # its own server: kill-server is not instant
    try:
        net.create_profile("bob")
        alice_dir.create_profile("alice")
        printed = alice_dir.run("--profile", "alice", "link", "--no-qr")
        assert printed.returncode == 0, printed.stderr
        alice_link = printed.stdout.strip().splitlines()[-1]
        node = await net.start_node(extra=["--cluster", str(CLUSTER)])
        fleet = tmp_path / "fleet.toml"
        fleet.write_text(f'cluster_id = {CLUSTER}\n\n[services]\nstore = ["{node.addr}"]\n')
        served = await net.serve("bob", extra=["--fleet", str(fleet)])

        # The config file says chinwag's default cluster and a peer nobody runs: the fleet
        # file given on the command line goes over it, as for serve.
        config = tmp_path / "config.toml"
        config.write_text(config_text(42, [NOBODY]))
        tmux.env = {**alice_dir.env(), PASSPHRASE_ENV: PASSPHRASE, "TERM": "xterm-256color"}
        alice = [
            chinwag_script(), "--config", str(config), "--data-dir", str(alice_dir.data_dir),
            "--profile", "alice",
        ]  # fmt: skip
        tmux.start([*alice, "--fleet", str(fleet), "--listen", LOOPBACK])
        await tmux.wait_for("● online", limit=45)
        await node.wait_for_mesh(2, cluster=CLUSTER)  # Alice and Bob, on the fleet's cluster
        async with served.client() as bob:
            asked = await bob.post("/v1/contacts", json={"link": alice_link, "message": "hi"})
            assert asked.status_code == 202, asked.text
            await tmux.wait_for("✉ 1 contact request")
        tmux.keys("C-q")
        await tmux.wait_for(gone, limit=20)

        # `--peer` after `tui`: the node named on the command line, the cluster from the
        # config file (which names no peer now; LAN discovery would not find the node).
        config.write_text(config_text(CLUSTER, []))
        again.env = tmux.env
        again.start([*alice, "tui", "--peer", node.addr, "--listen", LOOPBACK])
        await again.wait_for("● online", limit=45)

        async def meshed_again() -> bool:
            return await node.mesh_peers(cluster=CLUSTER) >= 2

        await wait_until(meshed_again)
        again.keys("C-q")
        await again.wait_for(gone, limit=20)
    finally:
        tmux.kill()
        again.kill()
        await net.close()
