"""Smoke test of the real `chinwag` executable in tmux, with a headless contact: a service node
(`chinwag node --store`), Bob as `chinwag serve` driven over its REST API, and Alice's TUI
(profile created with CHINWAG_PASSPHRASE, so no unlock screen) in a private tmux server. Alice
adds Bob by pasting his link, Bob accepts, they write both ways, and one message waits in the
store while Bob's process is stopped; what Alice sees (✓ stored, ✓✓ delivered, Bob's text) is
read off the screen with `tmux capture-pane`, what Bob got over HTTP."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from harness.processes import PASSPHRASE, Chinwag, ChinwagProcess
from harness.tmux import Tmux, chinwag_script
from harness.waiting import wait_until

from chat.config import PASSPHRASE_ENV

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def line_with(screen: str, text: str) -> str:
    """The (last) screen line that shows `text`, without trailing blanks."""
    lines = [line.rstrip() for line in screen.splitlines() if text in line]
    return lines[-1] if lines else ""


def has_state(text: str, glyph: str) -> Callable[[str], bool]:
    """The message's line shows this state glyph in the state column, right before the
    sender's name (✓ is not ✓✓: the column is two cells and a space)."""

    def check(screen: str) -> bool:
        return f"{glyph.ljust(2)} {text}" in line_with(screen, text)

    return check


async def incoming(bob: httpx.AsyncClient, chat_id: str) -> list[str]:
    messages = (await bob.get(f"/v1/chats/{chat_id}/messages")).json()
    return [m["text"] for m in messages if not m["outgoing"]]


async def test_the_tui_befriends_and_chats_with_a_headless_contact(tmp_path: Path) -> None:
    net = Chinwag(tmp_path / "net")
    alice_dir = Chinwag(tmp_path / "alice")
    tmux = Tmux(tmp_path / "tmux.sock", {})
    try:
        net.create_profile("bob")
        alice_dir.create_profile("alice")
        node = await net.start_node()
        served = await net.serve("bob", node.addr)
        config = tmp_path / "config.toml"
        config.write_text(f'[network]\npeers = ["{node.addr}"]\n\n[notifications]\nbell = false\n')
        tmux.env = {**alice_dir.env(), PASSPHRASE_ENV: PASSPHRASE, "TERM": "xterm-256color"}
        tmux.start([
            chinwag_script(), "--config", str(config), "--data-dir", str(alice_dir.data_dir),
            "--profile", "alice",
        ])  # fmt: skip
        await tmux.wait_for("● online")  # the unlock screen was skipped; the health bar is up
        await node.wait_for_mesh(2)
        async with served.client() as bob:
            chat_id = await befriend(tmux, bob)
            await chat(tmux, bob, chat_id)
            await message_for_a_stopped_contact(tmux, served.process, bob, chat_id)
        await search_and_open(tmux)
        tmux.keys("C-q")
        await tmux.wait_for(lambda s: "Pane is dead" in s or "● online" not in s, limit=20)
    finally:
        tmux.kill()
        await net.close()


async def befriend(tmux: Tmux, bob: httpx.AsyncClient) -> str:
    """Alice pastes Bob's link in the contacts screen; Bob accepts over HTTP. The chat id."""
    identity = (await bob.get("/v1/identity")).json()
    tmux.keys("F2")
    await tmux.wait_for("paste a contact link")
    tmux.type(identity["contact_link"])
    tmux.keys("Enter")
    await tmux.wait_for("request sent")

    alice_key = ""

    async def asked() -> bool:
        nonlocal alice_key
        contacts = (await bob.get("/v1/contacts")).json()
        waiting = [c for c in contacts if c["state"] == "request_received"]
        alice_key = waiting[0]["chat_key"] if waiting else ""
        return bool(waiting) and waiting[0]["display_name"] == "Alice"

    await wait_until(asked)
    accepted = await bob.post(f"/v1/contacts/{alice_key}/accept")
    assert accepted.status_code == 200, accepted.text
    chat_id: str = accepted.json()["chat_id"]

    def bob_is_a_contact(screen: str) -> bool:
        row = line_with(screen, "Bob")
        return "contact" in row and "request" not in row

    await tmux.wait_for(bob_is_a_contact)
    tmux.keys("Enter")  # the contacts table has the focus after adding: open the chat
    await tmux.wait_for(f"Bob  ·  {identity['chat_key'][:20]}")
    return chat_id


async def chat(tmux: Tmux, bob: httpx.AsyncClient, chat_id: str) -> None:
    tmux.type("hello Bob")  # the composer has the focus once the chat is open
    tmux.keys("Enter")
    await tmux.wait_for(has_state("Alice: hello Bob", "✓✓"))  # Bob acknowledged it

    async def bob_got_it() -> bool:
        return await incoming(bob, chat_id) == ["hello Bob"]

    await wait_until(bob_got_it)
    sent = await bob.post(f"/v1/chats/{chat_id}/messages", json={"text": "hello from Bob"})
    assert sent.status_code == 202, sent.text
    screen = await tmux.wait_for("Bob: hello from Bob")
    assert "failed" not in screen

    async def delivered_to_alice() -> bool:
        message = (await bob.get(f"/v1/messages/{sent.json()['id']}")).json()
        return bool(message["state"] == "delivered")

    await wait_until(delivered_to_alice)
    [bob_chat] = (await bob.get("/v1/chats")).json()
    assert bob_chat["unread"] == 1
    read = await bob.post(f"/v1/chats/{chat_id}/read")
    assert read.status_code == 200 and read.json()["unread"] == 0


async def message_for_a_stopped_contact(
    tmux: Tmux, bob_process: ChinwagProcess, bob: httpx.AsyncClient, chat_id: str
) -> None:
    """While Bob's process is stopped (SIGSTOP), Alice's message gets as far as the store
    node (✓) and no further; once Bob runs again he reads it and acknowledges it (✓✓)."""
    bob_process.stop(signal.SIGSTOP)
    try:
        tmux.type("are you there?")
        tmux.keys("Enter")
        await tmux.wait_for(has_state("Alice: are you there?", "✓"))
    finally:
        bob_process.stop(signal.SIGCONT)
    await tmux.wait_for(has_state("Alice: are you there?", "✓✓"))

    async def bob_got_it() -> bool:
        return await incoming(bob, chat_id) == ["hello Bob", "are you there?"]

    await wait_until(bob_got_it)


async def search_and_open(tmux: Tmux) -> None:
    """Ctrl+F in a real terminal: the search screen finds Bob's message; Enter (to the
    results) and Enter again open the chat with that message selected."""
    tmux.keys("C-f")
    await tmux.wait_for("Search messages")
    tmux.type("from bob")
    await tmux.wait_for("1 message(s) in every chat")
    tmux.keys("Enter")
    tmux.keys("Enter")
    await tmux.wait_for(lambda s: "Search messages" not in s and "Bob: hello from Bob" in s)
