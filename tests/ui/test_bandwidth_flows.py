"""Pilot test of the bandwidth screen against a real messenger on a loopback service node:
F8 (or the palette) opens it; it lists every protocol and relay message kind, and the bytes
of a contact request Alice sends show under their own kind within a refresh."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from harness.tui import on, running
from textual.widgets import DataTable

from chat.config import Config
from chat.session import Session
from ui.app import ChinwagApp
from ui.screens.bandwidth import BandwidthScreen

SIZE = (110, 40)


def cell(app: ChinwagApp, table: str, row: str, column: int) -> str:
    return str(app.screen.query_one(table, DataTable).get_row(row)[column])


@pytest.mark.slow
def test_f8_shows_bytes_per_protocol_and_kind_and_the_palette_opens_it_too(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await ui.wait_for_text(pilot, "● online")
            await pilot.press("f8")
            await ui.wait_until(pilot, on(app, BandwidthScreen))
            await ui.wait_for_text(pilot, "Per protocol")
            text = ui.screen_text(app)
            for name in ("relay", "store", "metadata", "identify", "transport"):
                assert name in text
            for name in ("gossip control", "subscriptions", "chat messages", "contact requests"):
                assert name in text
            assert cell(app, "#bandwidth-protocols", "relay", 5) != "0 B"  # subscriptions in
            assert cell(app, "#bandwidth-kinds", "contact_request", 6) == "0 B"

            messenger = app.messenger
            assert messenger is not None
            await app.call(messenger.add_contact, bob.identity().contact_link, "hello Bob")
            await ui.wait_until(
                pilot, lambda: cell(app, "#bandwidth-kinds", "contact_request", 6) != "0 B"
            )
            # Messages in / out: at least our request went out (the flow may send it again).
            assert int(cell(app, "#bandwidth-kinds", "contact_request", 7).split("/")[1]) >= 1

            await pilot.press("escape")
            await ui.wait_until(pilot, lambda: not isinstance(app.screen, BandwidthScreen))
            await pilot.press("ctrl+p", *"Bandwidth", "enter")
            await ui.wait_until(pilot, on(app, BandwidthScreen))
            await pilot.press("ctrl+q")

    asyncio.run(scenario())
