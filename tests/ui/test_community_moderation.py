"""Community moderation in the TUI. Which steps are offered on a member follows the core's
role table (checked here for every pair of roles); and pilot runs against real messengers
on loopback nodes (the harness of test_communities.py): the owner adds a channel from F9
and a member gets it, kicks the member from F7 after a confirmation that says what rotates
and the member is out; a member's F7 offers nothing, and a member leaves from F9."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from harness.live_communities import fetched, role_in, serve_shard
from harness.tui import on, running
from harness.waiting import wait_until
from textual.widgets import DataTable

from chat.config import Config
from chat.events import CommunityMemberView, CommunityView
from chat.messenger import Messenger
from chat.session import Session
from ui.app import ChinwagApp
from ui.screens.communities import CommunitiesScreen
from ui.screens.community_members import CommunityMembersScreen
from ui.screens.community_moderation import (
    AddChannelScreen,
    ConfirmScreen,
    ban_words,
    kick_words,
    leave_words,
    may_edit_channels,
    may_edit_description,
    member_actions,
)
from ui.screens.help import KEYS
from ui.screens.main import MainScreen

SIZE = (130, 40)
ME = "cw1me"
OTHER = "cw1other"


def community_as(my_role: str) -> CommunityView:
    return CommunityView(
        id="c" * 64,
        name="Birders",
        about="",
        join_policy="open",
        shard="/waku/2/rs/16/7",
        protection_key="",
        channels=[],
        members=[],
        my_role=my_role,
    )


@pytest.mark.parametrize(
    ("mine", "theirs", "offered"),
    [
        ("owner", "member", ["kick", "ban", "admin"]),
        ("owner", "admin", ["kick", "ban", "member"]),
        ("admin", "member", ["kick", "ban"]),
        ("admin", "admin", []),
        ("admin", "owner", []),
        ("owner", "owner", []),
        ("member", "member", []),
        ("member", "admin", []),
        ("member", "owner", []),
        ("none", "member", []),
    ],
)
def test_the_steps_offered_follow_the_role_rules(
    mine: str, theirs: str, offered: list[str]
) -> None:
    member = CommunityMemberView(OTHER, "Bob", theirs)
    assert member_actions(community_as(mine), ME, member) == offered


def test_nothing_is_offered_on_ourselves_and_only_moderators_add_channels() -> None:
    assert member_actions(community_as("owner"), ME, CommunityMemberView(ME, "Me", "owner")) == []
    assert [may_edit_channels(community_as(r)) for r in ("owner", "admin", "member", "none")] == [
        True,
        True,
        False,
        False,
    ]


def test_owner_and_admins_may_edit_the_description_and_remove_channels() -> None:
    """F9 offers e (edit) and r (remove a channel) by the core's role table."""
    roles = ("owner", "admin", "member", "none")
    assert [may_edit_description(community_as(r)) for r in roles] == [True, True, False, False]


def test_each_confirmation_says_what_rotates() -> None:
    birders = community_as("owner")
    assert "new epoch key" in kick_words(birders, "Bob")
    assert "protection key" not in kick_words(birders, "Bob")
    ban = ban_words(birders, "Bob")
    assert "new epoch key" in ban and "new protection key" in ban and "refused" in ban
    assert leave_words(birders).startswith("Leave Birders?")


def test_help_lists_the_moderation_keys() -> None:
    rows = [line for line in KEYS.splitlines() if "communit" in line]
    assert any("k / b / a / r" in row and "kick / ban" in row for row in rows)
    assert any("h / x" in row and "add a channel" in row and "leave" in row for row in rows)
    assert any("e / r" in row and "edit name" in row and "remove a channel" in row for row in rows)


def serve(network: Any, community: CommunityView) -> None:
    async def protect() -> None:
        serve_shard(network.service, community)

    network.run(protect)


async def channel_names(messenger: Messenger, community_id: str) -> list[str]:
    for community in await messenger.communities():
        if community.id == community_id:
            return [channel.name for channel in community.channels]
    return []


def hint(app: ChinwagApp) -> str:
    return str(app.screen.query_one("#community-members-hint").render())


@pytest.mark.slow
def test_the_owner_adds_a_channel_and_kicks_a_member(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Alice (the TUI) owns an open community Bob (headless) joined. F9 → h adds #sightings
    and Bob gets it; F7 on Bob offers kick, ban and make admin; a and r make him admin and
    back (his copy follows); k asks first, saying every remaining member gets a new epoch
    key (n keeps him); y removes him, and Bob is out."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            assert app.messenger is not None
            await ui.wait_for_text(pilot, "● online")
            community = await app.call(app.messenger.create_community, "Birders", "", "open")
            assert community is not None
            serve(network, community)
            found = await app.call(app.messenger.community_link, community.id)
            assert found is not None
            await network.arun(fetched, bob, found[0])
            await network.arun(bob.join_community, found[0], "")

            async def bob_member() -> bool:
                return await role_in(bob, community.id) == "member"

            await network.arun(wait_until, bob_member, 60)

            await pilot.press("f9")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await ui.wait_for_text(pilot, "h add a channel")
            assert "x leave" not in str(app.screen.query_one("#communities-hint").render())
            await pilot.press("h")
            await ui.wait_until(pilot, on(app, AddChannelScreen))
            await pilot.press("enter")  # no name: the core's refusal, as a sentence
            error = app.screen.query_one("#add-channel-error")
            await ui.wait_until(pilot, lambda: str(error.render()).endswith("."))
            await pilot.press(*"sightings", "enter")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))

            async def bob_has_the_channel() -> bool:
                return "sightings" in await channel_names(bob, community.id)

            await network.arun(wait_until, bob_has_the_channel, 60)

            await pilot.press("enter")  # opens the community's first channel
            await ui.wait_until(pilot, on(app, MainScreen))
            await ui.wait_for_text(pilot, "◆ Birders #general")
            await pilot.press("f7")
            await ui.wait_until(pilot, on(app, CommunityMembersScreen))
            assert hint(app) == "Esc closes"  # the cursor is on us, the owner
            await pilot.press("k")
            assert on(app, CommunityMembersScreen)()  # nothing offered, nothing done
            await pilot.press("down")
            await ui.wait_until(
                pilot, lambda: hint(app) == "k kick · b ban · a make admin · Esc closes"
            )
            await pilot.press("a")  # make admin: Bob's copy says so; then revoke it
            await ui.wait_until(
                pilot, lambda: hint(app) == "k kick · b ban · r revoke admin · Esc closes"
            )

            async def bob_is(role: str) -> bool:
                return await role_in(bob, community.id) == role

            await network.arun(wait_until, lambda: bob_is("admin"), 60)
            await pilot.press("r")
            await ui.wait_until(
                pilot, lambda: hint(app) == "k kick · b ban · a make admin · Esc closes"
            )
            await network.arun(wait_until, lambda: bob_is("member"), 60)
            await pilot.press("k", "n")  # asked, and not confirmed: nothing happens
            await ui.wait_until(pilot, on(app, CommunityMembersScreen))
            assert app.screen.query_one(DataTable).row_count == 2
            await pilot.press("k")
            await ui.wait_until(pilot, on(app, ConfirmScreen))
            question = str(app.screen.query_one("#confirm-question").render())
            assert question.startswith("Remove Bob from Birders?") and "new epoch key" in question
            await pilot.press("y")
            await ui.wait_until(pilot, on(app, CommunityMembersScreen))
            table = app.screen.query_one(DataTable)
            await ui.wait_until(pilot, lambda: table.row_count == 1, limit=30)
            assert str(app.screen.query_one("#community-members-error").render()) == ""

            async def bob_out() -> bool:
                return await role_in(bob, community.id) != "member"

            await network.arun(wait_until, bob_out, 60)

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_member_is_offered_no_moderation_and_leaves(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Bob (headless) owns an open community Alice (the TUI) joined: her F7 offers nothing
    on any row and k does nothing; F9 offers x leave, not h; leaving asks first, then the
    community is gone from her list and Bob's member list."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")
    community = network.run(bob.create_community, "Birders", "", "open")
    serve(network, community)
    link, _ = network.run(bob.community_link, community.id)

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            assert app.messenger is not None
            await ui.wait_for_text(pilot, "● online")
            assert await app.call(fetched, app.messenger, link) is not None
            assert await app.call(app.messenger.join_community, link, "") is not None
            await ui.wait_for_text(pilot, "◆ Birders #general", limit=60)

            await pilot.press("f9")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await ui.wait_for_text(pilot, "x leave")
            assert "h add a channel" not in str(app.screen.query_one("#communities-hint").render())
            await pilot.press("enter")
            await ui.wait_until(pilot, on(app, MainScreen))
            await pilot.press("f7")
            await ui.wait_until(pilot, on(app, CommunityMembersScreen))
            table = app.screen.query_one(DataTable)
            assert table.row_count == 2
            for _ in range(table.row_count):
                assert hint(app) == "Esc closes"
                await pilot.press("k", "b", "a")
                assert on(app, CommunityMembersScreen)()
                await pilot.press("down")
            await pilot.press("escape")
            await ui.wait_until(pilot, on(app, MainScreen))

            await pilot.press("f9")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await pilot.press("x")
            await ui.wait_until(pilot, on(app, ConfirmScreen))
            question = str(app.screen.query_one("#confirm-question").render())
            assert question.startswith("Leave Birders?")
            await pilot.press("y")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            rows = app.screen.query_one("#communities-table", DataTable)
            await ui.wait_until(pilot, lambda: rows.row_count == 0)

            async def alice_gone() -> bool:
                (view,) = [c for c in await bob.communities() if c.id == community.id]
                return len(view.members) == 1

            await network.arun(wait_until, alice_gone, 60)

    asyncio.run(scenario())
