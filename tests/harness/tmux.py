"""A private tmux server (its own socket) running the real `chinwag` executable in one window,
for the TUI's black-box tests: keys in with `send-keys`, the screen out with `capture-pane`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from harness.waiting import wait_until

WIDTH, HEIGHT = 120, 36
TERMINAL_SIZE = ("COLUMNS", "LINES")
WINDOW = "smoke:alice"


def chinwag_script() -> str:
    """The installed console script: the executable a user runs."""
    candidate = Path(sys.executable).with_name("chinwag")
    found = str(candidate) if candidate.exists() else shutil.which("chinwag")
    assert found, "the chinwag console script is not installed in this environment"
    return found


class Tmux:
    """One private tmux server (its own socket) with one window."""

    def __init__(self, socket: Path, env: dict[str, str]) -> None:
        self.socket = socket
        self.env = env

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True, text=True, env=self.server_env(), check=True, timeout=10,
        )  # fmt: skip
        return done.stdout

    def server_env(self) -> dict[str, str]:
        """The environment without COLUMNS and LINES: pytest-xdist's workers set them to 80
        and 24, and an app in the window would believe them over the window's own size."""
        return {name: value for name, value in self.env.items() if name not in TERMINAL_SIZE}

    def start(self, command: list[str]) -> None:
        shell_command = " ".join(f"'{part}'" for part in command)
        size = ("-x", str(WIDTH), "-y", str(HEIGHT))
        self.tmux("new-session", "-d", "-s", "smoke", "-n", "alice", *size, shell_command)
        self.tmux("set-option", "-t", "smoke", "remain-on-exit", "on")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", WINDOW)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", WINDOW, *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", WINDOW, "-l", text)

    async def wait_for(self, check: Callable[[str], bool] | str, limit: float = 30) -> str:
        """Until the screen shows `check` (text, or a test of the screen's text); the screen."""
        predicate = (lambda s: check in s) if isinstance(check, str) else check
        seen = ""

        def shown() -> bool:
            nonlocal seen
            seen = self.screen()
            return predicate(seen)

        # Another process draws the screen: look at it until it shows what we want.
        await wait_until(shown, limit, what=lambda: f"{check!r}; the screen:\n{seen}")
        return seen

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"],
            capture_output=True,
            env=self.server_env(),
        )
