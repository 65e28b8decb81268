"""TUI benchmark: a profile with many messages, measured the way a user feels it.

    python tests/bench/tui.py [--messages 100000] [--big 10000] [--quick]

Setup (not measured): two real profiles, Alice and Bob, befriend through a loopback service
node with real messengers; then Alice's database gets `--messages` messages across `--chats`
chats, `--big` of them in her chat with Bob. Then, in a fresh process (so imports count):

- launch_to_chat_list_s: process start → the TUI shows the unlocked chat list
  (CHINWAG_PASSPHRASE-style unlock with the profile's own KDF, messenger started, chats read);
- open_conversation_ms: opening the `--big`-message chat (newest page read and rendered),
  p50/p95 over several opens;
- rss_mb: resident memory after that;
- keypress_ms: one key into the composer until it is processed and painted, p50/p95, while
  Bob (headless, same loopback network) sends `--rate` messages per second into the open chat.

One JSON object per line. Goals: launch under 1.5 s, open under 100 ms, RSS under 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, this file's directory comes first on sys.path and would shadow packages.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.append(str(_HERE.parent))  # tests/, for the harness

START = time.monotonic()  # as early as possible: the launch time counts our own imports

PASSPHRASE = "benchmark passphrase"
LOOPBACK = "/ip4/127.0.0.1/tcp/0"
WORDS = ("the", "a", "to", "and", "you", "it", "is", "we", "on", "hey", "ok", "lunch", "yes")


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "tui", **fields}), flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fast_config(peers: tuple[str, ...]) -> Any:
    from chat.contacts import RequestPolicy
    from chat.messenger import MessengerConfig

    return MessengerConfig(
        listen_addrs=(LOOPBACK,), peers=peers, requests=RequestPolicy(first_resend=2.0)
    )


class Network:
    """A service node and Bob's messenger on a trio thread."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.token: Any = None
        self.ready = threading.Event()
        self.stop_event: Any = None
        self.service: Any = None
        self.bob: Any = None

    def start(self, bob_store: Any) -> None:
        import trio
        from multiaddr import Multiaddr

        from chat.messenger import Messenger
        from chat.waku.node import NodeConfig
        from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions

        async def main() -> None:
            self.token = trio.lowlevel.current_trio_token()
            self.stop_event = trio.Event()
            self.service = ServiceNode(
                ServiceNodeConfig(
                    node=NodeConfig(listen_addrs=[Multiaddr(LOOPBACK)]),
                    store=StoreOptions(self.tmp / f"archive-{os.getpid()}.sqlite"),
                )
            )
            async with self.service.run():
                self.bob = Messenger(bob_store, fast_config((self.address(),)))
                async with self.bob.run():
                    self.ready.set()
                    await self.stop_event.wait()

        threading.Thread(target=trio.run, args=(main,), daemon=True).start()
        assert self.ready.wait(30), "the service node and Bob did not start"

    def address(self) -> str:
        return str(self.service.node.full_multiaddrs()[0])

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        import trio

        return trio.from_thread.run(fn, *args, trio_token=self.token)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.token.run_sync_soon(self.stop_event.set)


def kdf_for(args: argparse.Namespace) -> Any:
    from storage.kdf import KdfParams

    return KdfParams.fresh(opslimit=1, memlimit=8192) if args.quick else None


# ---- setup -------------------------------------------------------------------------------
def setup(args: argparse.Namespace, base: Path) -> Network:
    """Befriend Alice and Bob, seed Alice's database; Bob and the service node keep running."""
    import trio

    from chat.identity_store import ensure_identity
    from chat.messenger import Messenger
    from storage.kdf import KdfParams
    from storage.profiles import Profiles

    alice_profiles = Profiles(base / "data" / "profiles")
    bob_profiles = Profiles(base / "bob")
    alice_store = alice_profiles.create(
        "default", PASSPHRASE, display_name="Alice", now=1_000, kdf=kdf_for(args)
    )
    bob_store = bob_profiles.create(
        "bob",
        PASSPHRASE,
        display_name="Bob",
        now=1_000,
        kdf=KdfParams.fresh(opslimit=1, memlimit=8192),
    )
    ensure_identity(alice_store, time.time())
    network = Network(base)
    network.start(bob_store)

    async def befriend() -> str:
        alice = Messenger(alice_store, fast_config((network.address(),)))
        found: list[str] = []
        async with trio.open_nursery() as nursery:
            # Stopped from outside, the way the TUI's bridge stops it.
            nursery.start_soon(_befriend, alice, network, found, nursery.cancel_scope)
        return found[0]

    chat_id = trio.run(befriend)
    seed(alice_store, chat_id, args)
    alice_store.close()
    (base / "chat_id").write_text(chat_id)
    return network


async def _befriend(alice: Any, network: Network, found: list[str], done: Any) -> None:
    import trio
    from harness.waiting import wait_until

    async with alice.run():
        await wait_until(lambda: sum(alice.health().peers_per_shard.values()) > 0, 60)
        link = alice.identity().contact_link
        chat_key = network.bob.identity().chat_key
        await trio.to_thread.run_sync(network.run, network.bob.add_contact, link, "hi")

        async def alice_has_the_request() -> bool:
            return any(c.chat_key == chat_key for c in await alice.contacts())

        await wait_until(alice_has_the_request, 60)
        contact = await alice.accept_contact(chat_key)
        assert contact.chat_id is not None

        def bob_mutual() -> bool:
            contacts = network.run(network.bob.contacts)
            return any(c.state == "mutual" for c in contacts)

        async def bob_mutual_yet() -> bool:
            return await trio.to_thread.run_sync(bob_mutual)

        await wait_until(bob_mutual_yet, 60)
        found.append(contact.chat_id)
        done.cancel()
        await trio.sleep_forever()


def seed(store: Any, big_chat: str, args: argparse.Namespace) -> None:
    from storage.repositories.conversations import Conversation

    rng = random.Random(7)
    now_ms = int(time.time() * 1000)
    others = [f"{i:032x}" for i in range(1, args.chats)]
    me, them = "cw1alice", "cw1someone"
    with store.db.transaction():
        for chat in others:
            store.conversations.add(
                Conversation(
                    id=chat, kind="direct", title=f"chat {chat[-4:]}",
                    pubsub_topic="/waku/2/rs/42/0", content_topic=f"/chinwag/1/{chat}/proto",
                    created_at=now_ms - 86_400_000 * 30,
                    last_activity_at=now_ms - rng.randint(1, 10**9),
                )
            )  # fmt: skip
        rest = args.messages - args.big
        plan = [(big_chat, args.big)] + [
            (chat, rest // len(others) + (1 if i < rest % len(others) else 0))
            for i, chat in enumerate(others)
        ]
        for chat, count in plan:
            at = now_ms - count * 60_000
            for _ in range(count):
                at += rng.randint(1_000, 119_000)
                outgoing = rng.random() < 0.5
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 25)))
                store.messages.add(
                    conversation_id=chat, message_id=os.urandom(16).hex(),
                    sender=me if outgoing else them, outgoing=outgoing, body=text,
                    sent_at=at, state="delivered" if outgoing else "received", now=at,
                    received_at=None if outgoing else at,
                )  # fmt: skip


# ---- measured, in a fresh process ----------------------------------------------------------
def child(args: argparse.Namespace, base: Path) -> None:
    # What `chinwag` does with CHINWAG_PASSPHRASE set, in its order: the key derivation
    # starts before Textual is imported, libp2p is left to the app's own background import.
    from chat.config import Config, NetworkConfig
    from chat.session import Session

    config = Config(
        config_file=base / "config.toml",
        data_dir=base / "data",
        network=NetworkConfig(peers=(args.peer,)),
    )
    session = Session(config)
    session.derive_early(PASSPHRASE)

    from textual import events

    from ui.app import ChinwagApp

    chat_id = (base / "chat_id").read_text()

    async def scenario() -> None:
        from ui.screens.main import MainScreen
        from ui.widgets.composer import Composer
        from ui.widgets.conversation import ConversationView

        app = ChinwagApp(session, passphrase=PASSPHRASE)
        async with app.run_test(size=(120, 40)) as pilot:
            while app.ready_at is None:
                await pilot.pause(0.01)
            emit(metric="launch_to_chat_list_s", value=round(time.monotonic() - START, 3))
            while app.messenger is None:
                await pilot.pause(0.01)
            emit(metric="launch_to_network_started_s", value=round(time.monotonic() - START, 3))
            main = app.screen
            assert isinstance(main, MainScreen)
            opens = []
            for _ in range(args.opens):
                other = next(iter(c for c in main.query_one("#chat-list").chats if c != chat_id))  # type: ignore[attr-defined]
                await main.open_chat(other)
                await pilot.pause()
                started = time.perf_counter()
                await main.open_chat(chat_id)  # the page read and rendered into lines
                await asyncio.sleep(1 / 60)  # and the next frame painted them
                opens.append((time.perf_counter() - started) * 1000)
            view = main.query_one(ConversationView)
            emit(
                metric="open_conversation_ms", messages_in_chat=args.big,
                p50=round(statistics.median(opens), 1), p95=round(percentile(opens, 0.95), 1),
                loaded=len(view.messages),
            )  # fmt: skip
            emit(metric="rss_mb", value=round(rss_mb(), 1))

            # The parent starts Bob's traffic once it reads the line above; wait for it.
            arrived_before = len(view.messages)
            while len(view.messages) < arrived_before + 3:
                await pilot.pause(0.05)
            composer = main.query_one(Composer)
            composer.focus()
            await pilot.pause()
            latencies = []
            arrived_before = len(view.messages)
            for i in range(args.presses):
                # Not pilot.press: it waits for the whole process to go idle, which a chat
                # receiving 20 messages a second never does. Post the key as the terminal
                # driver would, then wait until the composer holds it and the next frame ran.
                expected = composer.text + "x" if i % 2 == 0 else composer.text[:-1]
                key = events.Key("x", "x") if i % 2 == 0 else events.Key("backspace", None)
                started = time.perf_counter()
                app.post_message(key)
                while composer.text != expected:  # noqa: ASYNC110 (polled: no event to wait on)
                    await asyncio.sleep(0)
                await asyncio.sleep(1 / 60)  # Textual paints at most 60 times a second
                latencies.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.1)
            emit(
                metric="keypress_ms", rate_per_s=args.rate,
                p50=round(statistics.median(latencies), 1),
                p95=round(percentile(latencies, 0.95), 1),
                arrived_during=len(view.messages) - arrived_before,
            )  # fmt: skip
            emit(metric="rss_mb_after_traffic", value=round(rss_mb(), 1))
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--opens", type=int, default=10)
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="cheap KDF (for the smoke test)")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temp dir)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args, args.dir)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        base = args.dir or Path(tmp)
        started = time.monotonic()
        network = setup(args, base)
        emit(metric="setup_s", messages=args.messages, value=round(time.monotonic() - started, 1))
        command = [sys.executable, str(Path(__file__).resolve()), "--child", "--dir", str(base)]
        command += ["--peer", network.address()]
        for flag in ("messages", "big", "chats", "opens", "presses", "rate"):
            command += [f"--{flag}", str(getattr(args, flag))]
        if args.quick:
            command.append("--quick")
        env = {**os.environ, "XDG_CONFIG_HOME": str(base / "xdg")}
        stop = threading.Event()
        chat_id = (base / "chat_id").read_text()

        def send_steadily() -> None:
            n = 0
            while not stop.is_set():
                network.run(network.bob.send_text, chat_id, f"incoming {n}")
                n += 1
                time.sleep(1 / args.rate)  # a steady arrival rate, by the wall clock

        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
            assert process.stdout is not None
            for line in process.stdout:
                print(line, end="", flush=True)
                if '"rss_mb"' in line:
                    threading.Thread(target=send_steadily, daemon=True).start()
            stop.set()
            code = process.wait(600)
        network.close()
        if code:
            raise SystemExit(f"the measured process failed with exit code {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
