"""Smoke test of the one-file binary (`make binary`, packaging/build-binary.sh) as a user runs
it: it names its version and commands, creates a profile, runs a service node whose metrics
endpoint answers, and its chat screen, in tmux, reaches that node. The node and the chat screen
run with memory that is never both writable and executable (the systemd unit's
MemoryDenyWriteExecute=yes), where the kernel can enforce it. Its collector keeps its rows in
a real PostgreSQL server (the bundled client). The systemd unit's command line runs in a sandbox
like the unit's (read-only system, private /tmp, unprivileged). Skipped unless
CHINWAG_PACKAGING_TESTS=1: `make test-packaging` builds the binary and runs these."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest
import trio
from harness import postgres
from harness.packaging import (
    INSTALLED_CONFIG,
    PackagedChinwag,
    needs_packaging,
    project_version,
    unit_command,
    write_execute_wrapper,
)
from harness.processes import PASSPHRASE, ChinwagProcess
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


SANDBOX_UID = 61184
"""A uid of the range systemd gives DynamicUser= services; no account of this machine."""
SANDBOX_STATE = "/var/lib/chinwag"
LOCAL_ONLY = {"/ip4/0.0.0.0/tcp/60000": "/ip4/127.0.0.1/tcp/0", "127.0.0.1:8008": "127.0.0.1:0"}
"""The example node.env's fixed ports, which another node on this machine may hold."""


def sandboxed(command: list[str], state: Path) -> list[str]:
    """`command` in a sandbox like the unit's (bubblewrap standing in for systemd): the whole
    filesystem read-only but the state directory, a private /tmp, its own process and IPC
    namespaces, an unprivileged uid, no new privileges, HOME=/ (DynamicUser's)."""
    return [
        "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        "--perms", "1777", "--tmpfs", "/tmp",
        "--perms", "0755", "--tmpfs", "/var/lib", "--bind", str(state), SANDBOX_STATE,
        "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--setenv", "HOME", "/",
        "--chdir", "/", "--",
        "setpriv", f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups",
        "--no-new-privs", *command,
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("bwrap") is None or shutil.which("setpriv") is None or os.geteuid() != 0,
    reason="needs bubblewrap, setpriv and root to build a sandbox like the systemd unit's",
)
async def test_the_binary_node_runs_in_a_sandbox_like_its_systemd_units(
    chinwag_binary: Path, tmp_path: Path
) -> None:
    """The unit's own command line (ExecStart with the example node.env, ports made free) run
    by the binary with the unit's restrictions: it starts, serves metrics, and keeps its
    key, archive and log in the state directory, the one place it can write."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, SANDBOX_UID, SANDBOX_UID)
    words = [LOCAL_ONLY.get(word, word) for word in unit_command()]
    ws = words.index("--ws-port")
    del words[ws : ws + 2]
    words[0] = str(chinwag_binary)
    words[words.index("--config") + 1] = str(INSTALLED_CONFIG["/etc/chinwag/config.toml"])
    command = [*write_execute_wrapper(), *sandboxed(words, state)]
    stderr = tmp_path / "stderr.txt"
    with stderr.open("wb") as err:
        process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=err)
    node = ChinwagProcess(process, stderr)
    try:
        header = await node.line()
        assert header.startswith("chinwag node ") and "store" in header, node.stderr
        while not (line := await node.line()).startswith("metrics "):
            pass
        async with httpx.AsyncClient() as http:
            metrics = await http.get(line.removeprefix("metrics "))
        assert "chinwag_connected_peers 0" in metrics.text
        for written in ("node/nodekey", "node/archive.sqlite", "logs/chinwag.log"):
            assert (state / written).stat().st_uid == SANDBOX_UID, written
    finally:
        node.stop(signal.SIGKILL)
        await node.wait()
