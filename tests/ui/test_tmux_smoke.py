"""Smoke test of the real `chinwag` executable in tmux: a service node (`chinwag node
--store`), two profiles created with CHINWAG_PASSPHRASE, two TUIs that skip the unlock screen,
a contact request accepted from the TUI, messages both ways, and every state read off the
screen with `tmux capture-pane`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

PASSPHRASE = "smoke test passphrase"
WIDTH, HEIGHT = 120, 36


def chinwag() -> str:
    candidate = Path(sys.executable).with_name("chinwag")
    found = str(candidate) if candidate.exists() else shutil.which("chinwag")
    assert found, "the chinwag console script is not installed in this environment"
    return found


class Tmux:
    """One private tmux server (its own socket) with a window per TUI."""

    def __init__(self, socket: Path, env: dict[str, str]) -> None:
        self.socket = socket
        self.env = env

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=True,
            timeout=10,
        )
        return out.stdout

    def start(self, name: str, command: list[str]) -> None:
        shell_command = " ".join(f"'{part}'" for part in command)
        if not self.socket.exists():
            self.tmux(
                "new-session",
                "-d",
                "-s",
                "smoke",
                "-n",
                name,
                "-x",
                str(WIDTH),
                "-y",
                str(HEIGHT),
                shell_command,
            )
        else:
            self.tmux("new-window", "-t", "smoke", "-n", name, shell_command)
        self.tmux("set-option", "-t", "smoke", "remain-on-exit", "on")

    def screen(self, name: str) -> str:
        return self.tmux("capture-pane", "-p", "-t", f"smoke:{name}")

    def keys(self, name: str, *keys: str) -> None:
        self.tmux("send-keys", "-t", f"smoke:{name}", *keys)

    def type(self, name: str, text: str) -> None:
        self.tmux("send-keys", "-t", f"smoke:{name}", "-l", text)

    def wait_for(self, name: str, check: Callable[[str], bool] | str, limit: float = 60) -> str:
        predicate = (lambda s: check in s) if isinstance(check, str) else check
        deadline = time.monotonic() + limit
        while True:
            text = self.screen(name)
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: timed out waiting for {check!r}; screen:\n{text}")
            time.sleep(0.2)  # a separate process draws the screen: poll it

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, env=self.env
        )


def wait_for_mesh(metrics_url: str, sample: str, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while True:
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            text = response.read().decode()
        if sample in text:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the service node's mesh never reached {sample!r}:\n{text}")
        time.sleep(0.2)  # the node forms its mesh in its own process: poll it


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Tmux, str, Path]]:
    env = {
        **os.environ,
        "CHINWAG_PASSPHRASE": PASSPHRASE,
        "TERM": "xterm-256color",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    node = subprocess.Popen(
        [
            chinwag(),
            "--data-dir", str(tmp_path / "node"),
            "node", "--store", "--listen", "/ip4/127.0.0.1/tcp/0",
            "--metrics", "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    tmux = Tmux(tmp_path / "tmux.sock", env)
    try:
        assert node.stdout is not None
        header = node.stdout.readline()
        assert header.startswith("chinwag node"), header + (
            node.stderr.read() if node.stderr else ""
        )
        address = node.stdout.readline().strip()
        metrics = node.stdout.readline().strip().removeprefix("metrics ")
        config = tmp_path / "config.toml"
        config.write_text(f'[network]\npeers = ["{address}"]\n\n[notifications]\nbell = false\n')
        yield tmux, metrics, config
    finally:
        tmux.kill()
        node.terminate()
        node.wait(10)


def test_two_tuis_befriend_and_chat_through_a_service_node(
    setup: tuple[Tmux, str, Path], tmp_path: Path
) -> None:
    tmux, metrics, config = setup
    env = tmux.env
    dirs = {name: tmp_path / name for name in ("alice", "bob")}
    for name, directory in dirs.items():
        create = ["profile", "create", "--display-name", name.title()]
        subprocess.run(
            [chinwag(), "--data-dir", str(directory), *create],
            env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    bob_link = subprocess.run(
        [chinwag(), "--data-dir", str(dirs["bob"]), "link", "--no-qr"],
        env=env, check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    for name, directory in dirs.items():
        tmux.start(name, [chinwag(), "--config", str(config), "--data-dir", str(directory)])
    for name in dirs:
        tmux.wait_for(name, "● online")  # the unlock screen was skipped; the health bar is up
    # "online" means a relay peer; the service node forwards to both only once they are in
    # its gossipsub mesh (a message published before that waits for the 60 s re-send).
    wait_for_mesh(metrics, '/waku/2/rs/42/0"} 2')

    tmux.keys("alice", "F2")
    tmux.wait_for("alice", "paste a contact link")
    tmux.type("alice", bob_link)
    tmux.keys("alice", "Enter")
    tmux.wait_for("alice", "request sent")

    tmux.wait_for("bob", "1 contact request")
    tmux.keys("bob", "Enter")  # the chat list is focused; the request badge is its first line
    tmux.wait_for("bob", "wants to chat with you")
    tmux.keys("bob", "Tab", "Tab", "Tab")  # link → intro → Add → the contacts table
    tmux.keys("bob", "a")
    tmux.wait_for("bob", lambda s: "wants to chat" not in s and "Alice" in s)
    tmux.keys("bob", "Enter")  # open the chat
    tmux.wait_for("bob", "Alice  ·  cw1")
    tmux.type("bob", "hello from Bob")
    tmux.keys("bob", "Enter")

    tmux.wait_for("alice", "contact")
    tmux.keys("alice", "Escape")
    tmux.wait_for("alice", "Bob (1)")
    tmux.keys("alice", "M-a")  # jump to the next unread chat
    tmux.wait_for("alice", "Bob: hello from Bob")
    tmux.type("alice", "hello Bob")  # the composer has the focus after the jump
    tmux.keys("alice", "Enter")
    alice = tmux.wait_for("alice", lambda s: "Alice: hello Bob  ✓✓" in s, limit=90)
    assert "failed" not in alice
    bob = tmux.wait_for("bob", "Alice: hello Bob")
    assert "Bob: hello from Bob  ✓✓" in bob
    tmux.keys("alice", "C-q")
    tmux.wait_for("alice", lambda s: "Pane is dead" in s or "● online" not in s, limit=20)
