"""Smoke test of the one-file binary (`make binary`, packaging/build-binary.sh) as a user runs
it: it names its version and commands, creates a profile, runs a service node whose metrics
endpoint answers, and its chat screen, in tmux, reaches that node. The node and the chat screen
run with memory that is never both writable and executable (the systemd unit's
MemoryDenyWriteExecute=yes), where the kernel can enforce it. Its collector keeps its rows in
a real PostgreSQL server (the bundled client). Skipped unless
CHINWAG_PACKAGING_TESTS=1: `make test-packaging` builds the binary and runs these."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest
from harness import postgres
from harness.packaging import (
    PackagedChinwag,
    needs_packaging,
    project_version,
    write_execute_wrapper,
)
from harness.processes import PASSPHRASE
from harness.tmux import Tmux

from chat.config import PASSPHRASE_ENV

pytestmark = [pytest.mark.packaging, needs_packaging]


def test_the_binary_names_its_version_and_commands(chinwag_binary: Path) -> None:
    version = subprocess.run(
        [str(chinwag_binary), "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    # Read from the bundled distribution metadata: without it, "0.0.0+source".
    assert version.stdout.strip() == f"chinwag {project_version()}"
    usage = subprocess.run(
        [str(chinwag_binary), "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for command in ("tui", "profile", "node", "serve", "collector", "lab"):
        assert command in usage.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
async def test_the_binary_creates_a_profile_runs_a_node_and_its_chat_screen_reaches_it(
    chinwag_binary: Path, tmp_path: Path
) -> None:
    wrapper = write_execute_wrapper()
    net = PackagedChinwag(tmp_path / "net", program=(str(chinwag_binary),), wrapper=wrapper)
    alice = PackagedChinwag(tmp_path / "alice", program=(str(chinwag_binary),), wrapper=wrapper)
    tmux = Tmux(tmp_path / "tmux.sock", {})
    try:
        alice.create_profile("alice")  # SQLCipher, Argon2 and the migrations, bundled
        node = await net.start_node()  # libp2p, protobuf, the SQLite archive
        async with httpx.AsyncClient() as http:
            metrics = await http.get(node.metrics_url)
        assert metrics.status_code == 200
        assert "chinwag_connected_peers 0" in metrics.text

        config = tmp_path / "config.toml"
        config.write_text(f'[network]\npeers = ["{node.addr}"]\n\n[notifications]\nbell = false\n')
        tmux.env = {**alice.env(), PASSPHRASE_ENV: PASSPHRASE, "TERM": "xterm-256color"}
        tmux.start([
            *wrapper, str(chinwag_binary), "--config", str(config),
            "--data-dir", str(alice.data_dir), "--profile", "alice",
        ])  # fmt: skip
        # The chat screen with its stylesheet (the key bar is laid out by ui/app.tcss), online
        # through the node: the unlock screen was skipped (CHINWAG_PASSPHRASE).
        screen = await tmux.wait_for("● online", limit=60)
        assert "f2 Contacts" in screen
        await node.wait_for_mesh(1)
        tmux.keys("C-q")
        await tmux.wait_for(lambda s: "Pane is dead" in s or "● online" not in s, limit=20)

        node.process.stop(signal.SIGTERM)
        assert (await node.process.rest()).splitlines()[-1] == "chinwag node stopped"
        assert await node.process.wait() == 0
    finally:
        tmux.kill()
        await net.close()
        await alice.close()


@pytest.mark.slow
async def test_the_binarys_collector_keeps_its_rows_in_postgresql(
    chinwag_binary: Path, tmp_path: Path
) -> None:
    """The bundled PostgreSQL client (psycopg with its libpq) and SQLAlchemy's dialect for it:
    an install registered with the binary's collector is a row in a real PostgreSQL server."""
    try:
        server = postgres.start()
    except postgres.PostgresUnavailable as exc:
        pytest.skip(str(exc))
    chinwag = PackagedChinwag(tmp_path / "collector", program=(str(chinwag_binary),))
    try:
        db_url = server.new_database()
        collector = await chinwag.start(
            "collector", "serve", "--open", "--listen", "127.0.0.1:0", "--db", db_url
        )
        url = (await collector.line()).removeprefix("collector ")
        assert await collector.line() == "ready"
        async with httpx.AsyncClient(base_url=url) as http:
            registered = await http.post("/v1/register", json={"schema_version": 1})
        assert registered.status_code == 201, registered.text
        install_id = registered.json()["install_id"]
        with psycopg.connect(db_url) as db:
            rows = db.execute("SELECT install_id FROM installs").fetchall()
        assert [str(row[0]) for row in rows] == [install_id]
    finally:
        await chinwag.close()
        server.stop()
