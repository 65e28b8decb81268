"""What screens use of the app they run in: the typed host protocol.

Screens never import ui.app. They reach the app through `host(self)`, typed as `ChatHost`:
ChinwagApp is the real host (mypy checks it against this protocol in ui/app.py), the
snapshot tests' harness a minimal one. What the app has to tell screens (the messenger is
up, the display name changed) arrives as messages (ui/messages.py), never as calls into a
screen's internals."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from chat.messenger import Messenger
    from chat.session import ChatSource, ProfileTelemetry
    from ui.bridge import TrioBridge

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class NetworkSetup:
    """How the network part was set up, for the hint shown while there are no peers."""

    config_file: str
    peers: int
    """Peers configured (config file, fleet, --peer)."""
    lan_discovery: bool
    log_file: str


class ChatHost(Protocol):
    @property
    def profile(self) -> str:
        """The profile's name."""

    @property
    def clock(self) -> Callable[[], float]:
        """Wall-clock time, injected (tests and snapshots fix it)."""

    @property
    def messenger(self) -> Messenger | None:
        """The messenger once it runs, else None."""

    @property
    def messenger_ready(self) -> asyncio.Event:
        """Set once the messenger runs, or once it failed to start."""

    @property
    def bridge(self) -> TrioBridge:
        """Runs trio coroutines (the messenger's calls) from the UI loop."""

    @property
    def telemetry(self) -> ProfileTelemetry | None:
        """The profile's opt-in telemetry while the messenger runs, else None."""

    ready_at: float | None
    messenger_failure: str | None
    """Why the messenger stopped (a sentence), once it has; else None."""
    """perf_counter when the chat list was first shown (the main screen sets it)."""

    def network_setup(self) -> NetworkSetup:
        """The config file, the configured peers and whether LAN discovery is on."""

    def chat_source(self) -> ChatSource | None:
        """Where chats and messages are read: the messenger once it runs, before that the
        profile's database alone; None before unlocking."""

    async def wait_for_messenger(self) -> Messenger | None:
        """The messenger once it runs; None if it stopped (the app says why)."""

    async def call(
        self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T | None:
        """Run a messenger coroutine; a refusal becomes a notification and None."""

    async def unlock(self, passphrase: str) -> str | None:
        """Open the profile and start the messenger; or the sentence that says why not."""

    async def create_profile(self, display_name: str, passphrase: str) -> str | None:
        """Create the profile, then start the messenger; or the sentence that says why not."""

    async def reconnect_now(self) -> None:
        """Dial every known peer now (Ctrl+R, the palette), and say what happened."""

    def announce_message(self, chat_name: str) -> None:
        """A message arrived that the user is not looking at: bell and desktop notification,
        as the config file says."""


def host(node: DOMNode) -> ChatHost:
    """The app `node` runs in, as its screens see it."""
    return cast("ChatHost", node.app)


NOT_RUNNING = "The network core is not running."
"""What a dialog says when no messenger runs to take its command."""


@dataclass(frozen=True)
class Refused:
    """A command the core refused, or could not run: why, as one sentence."""

    reason: str


async def attempt(
    chat_host: ChatHost, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
) -> T | Refused:
    """Run a messenger command for a dialog that shows a refusal in its own error line (not
    as a notification): the result, or the refusal as one sentence."""
    from chat.errors import UserError
    from ui.bridge import BridgeClosed

    try:
        return await chat_host.bridge.call(functools.partial(fn, *args, **kwargs))
    except UserError as exc:
        return Refused(_sentence(str(exc)))
    except BridgeClosed:
        return Refused(NOT_RUNNING)


def _sentence(text: str) -> str:
    text = text.strip() or "refused"
    text = text[:1].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."
