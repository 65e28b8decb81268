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
from harness.waiting import wait_until
from textual.widgets import Checkbox, Input

from chat.communities.shards import DEFAULT_SHARED_SHARD
from chat.config import Config
from chat.events import CommunityView
from chat.messenger import Messenger
from chat.session import Session
from chat.waku.topics import format_pubsub_topic
from ui.app import ChinwagApp
from ui.screens.communities import CommunitiesScreen
from ui.screens.community_dialogs import NewCommunityScreen
from ui.screens.community_edit import EditCommunityScreen, RemoveChannelScreen
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
    list, the open conversation closes, and a notice says she was removed. Removed (not
    banned), she asks again and is let back in: the channel is back in both lists."""
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
            if how == "kick":  # she may ask again: let back in, the channel (and history) return
                assert await app.call(app.messenger.join_community, link, "") is not None
                await ui.wait_until(pilot, lambda: general in listed(app), limit=60)
                assert general in await app.call(chat_ids, app.messenger)

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


async def community_of(messenger: Messenger, community_id: str) -> CommunityView | None:
    return next((c for c in await messenger.communities() if c.id == community_id), None)


def test_the_owner_edits_the_community_and_removes_a_channel(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Alice (the TUI) owns an open community Bob (headless) joined, with #general and
    #sightings. F9 → e: the dialog holds the name and about text; a new name and about go to
    Bob (his channel's title follows) and show in Alice's chat list. F9 → r → #sightings:
    the question says its messages are not deleted; n keeps it, y removes it from both chat
    lists."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            messenger = app.messenger
            assert messenger is not None
            await ui.wait_for_text(pilot, "● online")
            community = await app.call(
                messenger.create_community, "Birders", "", "open", ["general", "sightings"]
            )
            assert community is not None
            serve(network, community)
            found = await app.call(messenger.community_link, community.id)
            assert found is not None
            await network.arun(fetched, bob, found[0])
            await network.arun(bob.join_community, found[0], "")
            general, sightings = (c.id for c in community.channels)

            async def bob_has(chat_id: str, name: str = "") -> bool:
                chats = {c.id: c.name for c in await bob.chats()}
                return chat_id in chats and name in chats[chat_id]

            await network.arun(wait_until, lambda: bob_has(sightings), 60)

            await pilot.press("f9")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await ui.wait_for_text(pilot, "e edit · r remove a channel")
            await pilot.press("e")
            await ui.wait_until(pilot, on(app, EditCommunityScreen))
            name = app.screen.query_one("#edit-community-name", Input)
            assert name.value == "Birders"
            name.value = ""
            await pilot.press("enter")  # no name: the core's refusal, as a sentence
            error = app.screen.query_one("#edit-community-error")
            await ui.wait_until(pilot, lambda: str(error.render()).endswith("."))
            name.value = "Birdwatchers"
            app.screen.query_one("#edit-community-about", Input).value = "Every bird counts"
            await pilot.press("enter")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await ui.wait_for_text(pilot, "Birdwatchers")

            async def bob_sees_the_edit() -> bool:
                view = await community_of(bob, community.id)
                return view is not None and (view.name, view.about) == (
                    "Birdwatchers",
                    "Every bird counts",
                )

            await network.arun(wait_until, bob_sees_the_edit, 60)
            await network.arun(wait_until, lambda: bob_has(general, "Birdwatchers #general"), 60)

            await pilot.press("r")
            await ui.wait_until(pilot, on(app, RemoveChannelScreen))
            await pilot.press("down", "enter")
            await ui.wait_until(pilot, on(app, ConfirmScreen))
            question = str(app.screen.query_one("#confirm-question").render())
            assert question.startswith("Remove #sightings from Birdwatchers?")
            assert "not deleted" in question
            await pilot.press("n")
            await ui.wait_until(pilot, on(app, RemoveChannelScreen))
            assert sightings in listed(app)
            await pilot.press("enter")
            await ui.wait_until(pilot, on(app, ConfirmScreen))
            await pilot.press("y")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await ui.wait_until(pilot, lambda: sightings not in listed(app))
            assert general in listed(app)
            assert sightings not in await app.call(chat_ids, messenger)
            view = await app.call(community_of, messenger, community.id)
            assert view is not None and [c.name for c in view.channels] == ["general"]

            async def bob_lost_it() -> bool:
                return not await bob_has(sightings)

            await network.arun(wait_until, bob_lost_it, 60)
            await pilot.press("escape")
            await ui.wait_until(pilot, on(app, MainScreen))
            await ui.wait_for_text(pilot, "◆ Birdwatchers #general")
            assert "#sightings" not in ui.screen_text(app)

    asyncio.run(scenario())


def test_a_community_on_the_shared_shard_from_the_create_dialog(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """F9 → n: the dialog offers the shared shard with its cost in one line (no protection
    key, shared bandwidth); ticked, the community has no protection key and its channel's
    title says the shard is shared and unprotected. Unticked (the default) it is protected."""
    make_profile("Alice")
    network.start_service()

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            messenger = app.messenger
            assert messenger is not None
            await ui.wait_for_text(pilot, "● online")
            await pilot.press("f9")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await pilot.press("n")
            await ui.wait_until(pilot, on(app, NewCommunityScreen))
            await ui.wait_for_text(pilot, "No protection key: anyone can publish on it")
            shared = app.screen.query_one("#community-shared", Checkbox)
            assert not shared.value
            shared.focus()
            await pilot.press("space")
            assert shared.value
            app.screen.query_one("#community-name", Input).focus()
            await pilot.press(*"QA load 1", "enter")
            await ui.wait_until(pilot, on(app, MainScreen))
            await ui.wait_for_text(pilot, "◆ QA load 1 #general")
            await ui.wait_for_text(pilot, "shared, unprotected")
            (community,) = await app.call(messenger.communities) or []
            assert community.protection_key == ""
            assert community.shard == format_pubsub_topic(
                int(community.shard.split("/")[-2]), DEFAULT_SHARED_SHARD
            )

            await pilot.press("f9")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await pilot.press("n")
            await ui.wait_until(pilot, on(app, NewCommunityScreen))
            await pilot.press(*"Birders", "enter")
            await ui.wait_until(pilot, on(app, MainScreen))
            await ui.wait_for_text(pilot, "protected (key")
            views = await app.call(messenger.communities) or []
            birders = next(c for c in views if c.name == "Birders")
            assert birders.protection_key != ""

    asyncio.run(scenario())
