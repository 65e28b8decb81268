"""The first ten minutes in a real terminal: the real `chinwag` in a private tmux server,
keys sent by tmux as a terminal sends them, the clipboard read back from tmux's buffer.

- `chinwag link` prints the link while the chat screen has the profile open, without the
  passphrase; F4 then c copies the same link with OSC 52, and it reaches tmux's buffer
  (`set-clipboard on`); the link's rows, copied off the screen box and all and pasted
  (bracketed) into the contacts screen, parse (chinwag says it is your own link, not that
  it is damaged).
- Text typed on the chat list lands in the composer; Alt+Enter (ESC CR) starts a new line
  instead of sending; Alt+A is a command, not an "a".
- A network part that cannot start is one sentence on the health bar, and no log line or
  traceback is printed over the screen.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from harness.processes import PASSPHRASE, Chinwag
from harness.tmux import Tmux, chinwag_script

from chat.config import PASSPHRASE_ENV
from chat.session import clean_link

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def link_rows(screen: str) -> list[str]:
    """The rows that show a link, as a user selects them (the box's border, and at this size
    the QR code beside it, come along): from 'chinwag:' on, while the rows hold link
    characters."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if "chinwag:" in line)
    rows = [lines[start]]
    for line in lines[start + 1 :]:
        if not clean_link(line):
            break
        rows.append(line)
    return rows


async def test_link_while_running_copy_paste_and_keys_in_a_real_terminal(tmp_path: Path) -> None:
    net = Chinwag(tmp_path / "net")
    alice = Chinwag(tmp_path / "alice")
    tmux = Tmux(tmp_path / "tmux.sock", {})
    try:
        alice.create_profile("alice")
        node = await net.start_node()
        config = tmp_path / "config.toml"
        config.write_text(f'[network]\npeers = ["{node.addr}"]\n\n[notifications]\nbell = false\n')
        tmux.env = {**alice.env(), PASSPHRASE_ENV: PASSPHRASE, "TERM": "xterm-256color"}
        tmux.start([
            chinwag_script(), "--config", str(config), "--data-dir", str(alice.data_dir),
            "--profile", "alice",
        ])  # fmt: skip
        tmux.tmux("set-option", "-s", "set-clipboard", "on")  # OSC 52 makes a buffer
        await tmux.wait_for("● online")

        # `chinwag link` while the chat screen holds the profile, with no passphrase at all.
        env = {k: v for k, v in alice.env().items() if k != PASSPHRASE_ENV}
        printed = alice.run("--config", str(config), "--profile", "alice", "link", env=env)
        assert printed.returncode == 0, printed.stderr
        link = printed.stdout.strip().splitlines()[-1]
        assert link.startswith("chinwag:") and "█" in printed.stdout  # the QR code too

        tmux.keys("F4")
        screen = await tmux.wait_for("Send this link to people")
        rows = link_rows(screen)
        assert clean_link("".join(rows)) == link and len(rows) > 1 and "│" in rows[0]
        tmux.keys("c")
        await tmux.wait_for("Copied your contact link")
        assert tmux.tmux("show-buffer") == link  # OSC 52 reached tmux

        tmux.keys("Escape", "F2")
        await tmux.wait_for("paste a contact link")
        tmux.tmux("set-buffer", "--", "\n".join(rows))
        tmux.tmux("paste-buffer", "-p", "-t", "smoke:alice")  # bracketed, as terminals paste
        tmux.keys("Enter")
        screen = await tmux.wait_for("that is your own contact link")
        assert "damaged" not in screen
        tmux.keys("Escape")
        await tmux.wait_for("No chat open")

        tmux.type("one")  # the chat list has the focus: the text goes to the composer
        tmux.keys("M-Enter")  # ESC CR: a new line, not Enter
        tmux.type("two")
        tmux.keys("M-a")  # a command (no unread chat), not an "a"
        screen = await tmux.wait_for("No unread messages")
        lines = screen.splitlines()
        first = next(i for i, line in enumerate(lines) if "│ one " in line)
        assert "│ two " in lines[first + 1], screen  # two lines in the composer
        assert "Open a chat first" not in screen  # nothing was submitted
        assert "twoa" not in screen
        tmux.keys("C-q")
        await tmux.wait_for(lambda s: "Pane is dead" in s or "● online" not in s, limit=20)
    finally:
        tmux.kill()
        await net.close()


async def test_a_network_part_that_cannot_start_is_a_sentence_not_a_traceback(
    tmp_path: Path,
) -> None:
    alice = Chinwag(tmp_path / "alice")
    tmux = Tmux(tmp_path / "tmux.sock", {})
    try:
        alice.create_profile("alice")
        config = tmp_path / "config.toml"
        config.write_text("[notifications]\nbell = false\n")
        tmux.env = {**alice.env(), PASSPHRASE_ENV: PASSPHRASE, "TERM": "xterm-256color"}
        tmux.start([
            chinwag_script(), "--config", str(config), "--data-dir", str(alice.data_dir),
            "--profile", "alice", "--listen", "/ip4/203.0.113.1/tcp/4001",
        ])  # fmt: skip
        screen = await tmux.wait_for("○ stopped: cannot listen on")
        assert "Traceback" not in screen and "chinwag: ERROR" not in screen
        assert "starting" not in screen
        assert "The network part stopped" in screen
        tmux.keys("C-q")
        await tmux.wait_for(lambda s: "Pane is dead" in s or "stopped:" not in s, limit=20)
    finally:
        tmux.kill()
