"""Issue 15 item 6: a config file naming a peer chinwag cannot dial (here: no /p2p/ peer id)
was accepted by `chinwag info`, and the chat screen then failed over itself. Now `info` and
the chat UI check the network settings the same way, through `chat.session`, before
anything starts: the same one sentence, exit code 2, no traceback and no screen. The UI
runs in a real terminal (a private tmux server), as a user starts it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import trio
from harness.processes import PASSPHRASE
from harness.tmux import WINDOW, Tmux, chinwag_script

from chat.config import PASSPHRASE_ENV

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

BAD_PEER = "/ip4/127.0.0.1/tcp/60000"


async def test_info_and_the_chat_ui_refuse_a_peer_without_a_peer_id_in_one_sentence(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[network]\npeers = ["{BAD_PEER}"]\n')
    base = [chinwag_script(), "--config", str(config), "--data-dir", str(tmp_path / "data")]
    sentence = f"chinwag: {config}: [network] peers: {BAD_PEER} must be a multiaddr ending in"

    info = await trio.run_process(
        [*base, "info"], capture_stdout=True, capture_stderr=True, check=False
    )
    stderr = info.stderr.decode()
    assert info.returncode == 2, info.stdout
    assert stderr.startswith(sentence) and stderr.count("\n") == 1, stderr
    assert info.stdout == b""

    tmux = Tmux(tmp_path / "tmux.sock", {"TERM": "xterm-256color", PASSPHRASE_ENV: PASSPHRASE})
    try:
        # Through a shell that stays: chinwag exits at once, sooner than tmux could be told
        # to keep a dead pane.
        ui = " ".join(f'"{part}"' for part in [*base, "--profile", "alice"])
        tmux.start(["sh", "-c", f"{ui}; echo exited with $?; sleep 60"])
        await tmux.wait_for("exited with", limit=30)
        # Joined (-J): the sentence is wider than the terminal; from the start of history.
        screen = tmux.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", WINDOW)
    finally:
        tmux.kill()
    assert sentence in screen
    assert "exited with 2" in screen
    assert "Traceback" not in screen and "starting" not in screen
