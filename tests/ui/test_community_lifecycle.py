"""A community's life after it starts, in the TUI against real messengers on loopback nodes
(the harness of test_communities.py): a member who leaves, or is removed, no longer has its
channels in the chat list (nor in the messenger's chat list, which GET /v1/chats serves); the
owner renames the community and edits its about text from F9; removes a channel after a
confirmation that says what happens to its history; and makes a community on the shared
shard from the create dialog."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from harness.live_communities import fetched, role_in, serve_shard
from harness.tui import on, running

from chat.config import Config
from chat.events import CommunityView
from chat.messenger import Messenger
from chat.session import Session
from ui.app import ChinwagApp
from ui.screens.communities import CommunitiesScreen
from ui.screens.community_moderation import ConfirmScreen
from ui.screens.main import MainScreen
from ui.widgets.chat_list import ChatList

pytestmark = pytest.mark.slow

SIZE = (130, 40)


def serve(network: Any, community: CommunityView) -> None:
    async def protect() -> None:
        serve_shard(network.service, community)

    network.run(protect)


def listed(app: ChinwagApp) -> set[str]:
    """The chat ids in the main screen's chat list."""
    main = next(s for s in app.screen_stack if isinstance(s, MainScreen))
    return set(main.query_one(ChatList).chats)


async def chat_ids(messenger: Messenger) -> set[str]:
    return {chat.id for chat in await messenger.chats()}


async def alice_joins(app: ChinwagApp, ui: Any, pilot: Any, link: str) -> None:
    assert app.messenger is not None
    assert await app.call(fetched, app.messenger, link) is not None
    assert await app.call(app.messenger.join_community, link, "") is not None
    await ui.wait_for_text(pilot, "◆ Birders #general", limit=60)


@pytest.mark.parametrize("how", ["kick", "ban"])
def test_a_removed_member_loses_the_channels_from_the_chat_list(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None], how: str
) -> None:
    """Bob (headless) owns an open community Alice (the TUI) joined; she has #general open.
    Bob removes (or bans) her: the channel leaves her chat list and her messenger's chat
    list, the open conversation closes, and a notice says she was removed."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")
    community = network.run(bob.create_community, "Birders", "", "open")
    serve(network, community)
    link, _ = network.run(bob.community_link, community.id)
    general = community.channels[0].id

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            assert app.messenger is not None
            await ui.wait_for_text(pilot, "● online")
            await alice_joins(app, ui, pilot, link)
            assert general in listed(app)
            await pilot.press("alt+down")  # opens it (the only chat)
            main = app.screen
            assert isinstance(main, MainScreen)
            await ui.wait_until(pilot, lambda: main.current_chat == general)
            chat_key = app.messenger.identity().chat_key
            step = bob.kick_community_member if how == "kick" else bob.ban_community_member
            await network.arun(step, community.id, chat_key)

            await ui.wait_until(pilot, lambda: general not in listed(app), limit=60)
            assert general not in await app.call(chat_ids, app.messenger)
            assert main.current_chat is None
            await ui.wait_for_text(pilot, "no longer a member of Birders")
            assert await app.call(role_in, app.messenger, community.id) == "none"

    asyncio.run(scenario())


def test_leaving_takes_the_channels_out_of_the_chat_list(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Alice leaves from F9: the community's channels go from her chat list at once, and
    from her messenger's chat list."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")
    community = network.run(bob.create_community, "Birders", "", "open")
    serve(network, community)
    link, _ = network.run(bob.community_link, community.id)
    general = community.channels[0].id

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            assert app.messenger is not None
            await ui.wait_for_text(pilot, "● online")
            await alice_joins(app, ui, pilot, link)
            await pilot.press("f9")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await ui.wait_for_text(pilot, "x leave")
            await pilot.press("x")
            await ui.wait_until(pilot, on(app, ConfirmScreen))
            await pilot.press("y")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await ui.wait_until(pilot, lambda: general not in listed(app))
            assert general not in await app.call(chat_ids, app.messenger)
            await pilot.press("escape")
            await ui.wait_until(pilot, on(app, MainScreen))
            assert "◆ Birders" not in ui.screen_text(app)

    asyncio.run(scenario())
