"""Pilot tests of issue 15 items 2 and 3 against real messengers on loopback nodes: while
offline the health bar counts down to the next dial and Ctrl+R (or the palette) dials at
once; a retry in the outbox while offline says so and spends nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from harness.tui import on, running
from harness.waiting import wait_until
from textual.widgets import DataTable

from chat.config import Config
from chat.reliability.outbox import RetryPolicy
from chat.session import Session
from ui.app import ChinwagApp
from ui.screens.main import MainScreen
from ui.screens.outbox import OutboxScreen
from ui.widgets.composer import Composer

SIZE = (110, 34)


def dials_started(app: ChinwagApp) -> int:
    assert app.messenger is not None
    node: Any = app.messenger.node  # the real ClientNode
    return int(node.connectivity.peers.stats().dials_started)


def seconds_to_next_dial(app: ChinwagApp) -> float:
    assert app.messenger is not None
    due = app.messenger.health().next_dial_at
    return -1.0 if due is None else due - app.clock()


@pytest.mark.slow
def test_offline_the_health_bar_counts_down_and_ctrl_r_or_the_palette_dials_at_once(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    make_profile("Alice")
    network.start_service()

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await ui.wait_for_text(pilot, "● online")
            network.stop("service")
            await ui.wait_for_text(pilot, "○ offline, reconnecting in")
            assert "(ctrl+r: now)" in ui.screen_text(app)

            for press in (("ctrl+r",), ("ctrl+p", *"Reconnect now", "enter")):
                # Between two scheduled dials, so a dial now can only be ours.
                await ui.wait_until(pilot, lambda: seconds_to_next_dial(app) >= 2.0, limit=20)
                before = dials_started(app)
                await pilot.press(*press)
                await ui.wait_for_text(pilot, "Reconnecting now: dialling 1 peer.", limit=1.5)
                assert dials_started(app) == before + 1
                app.clear_notifications()
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_retry_in_the_outbox_while_offline_says_so_and_spends_nothing(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")
    budget = RetryPolicy(max_attempts=3, first_delay=4.0, max_delay=4.0, jitter=0.0)

    async def scenario() -> None:
        app = ChinwagApp(
            Session(config, override=network.config(retry=budget)), passphrase=ui.passphrase
        )
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await ui.wait_for_text(pilot, "● online")
            messenger = app.messenger
            assert messenger is not None
            await app.call(messenger.add_contact, bob.identity().contact_link, "")
            alice_key = messenger.identity().chat_key

            async def bob_asked() -> bool:
                return any(c.chat_key == alice_key for c in await bob.contacts())

            async def bob_accepts() -> None:
                await wait_until(bob_asked, 30)
                await bob.accept_contact(alice_key)

            await network.arun(bob_accepts)
            await ui.wait_until(pilot, lambda: bool(app.screen.query_one("#chat-list").chats))
            main = app.screen
            assert isinstance(main, MainScreen)
            await main.open_chat(next(iter(main.query_one("#chat-list").chats)))

            network.stop("service")
            await ui.wait_for_text(pilot, "○ offline")
            main.query_one(Composer).focus()
            await pilot.press(*"anyone there?", "enter")
            await ui.wait_for_text(pilot, "attempt 1 of 3")
            await pilot.press("f3")
            await ui.wait_until(pilot, on(app, OutboxScreen))
            outbox = app.screen
            assert isinstance(outbox, OutboxScreen)
            await ui.wait_until(pilot, lambda: bool(outbox.items))
            (item,) = outbox.items
            outbox.query_one(DataTable).move_cursor(row=0)
            for _ in range(3):
                await pilot.press("r")
            await ui.wait_for_text(pilot, "there is no peer to send it to right now")
            (after,) = outbox.items
            assert (after.attempts, after.next_attempt_at) == (item.attempts, item.next_attempt_at)
            assert "attempt 1 of 3" in ui.screen_text(app)

            # Once it has failed, a retry by hand queues it again with a fresh budget.
            await ui.wait_until(pilot, lambda: outbox.items[0].state == "failed", limit=20)
            app.clear_notifications()
            await pilot.press("r")
            await ui.wait_for_text(pilot, "Queued again with a fresh budget.")
            await ui.wait_until(pilot, lambda: outbox.items[0].state == "queued")
            assert outbox.items[0].attempts == 0 and outbox.items[0].total_attempts == 3
            assert "attempt 4 of 3" not in ui.screen_text(app)
            await pilot.press("ctrl+q")

    asyncio.run(scenario())
