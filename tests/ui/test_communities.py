"""Pilot tests of the community screens against real messengers on loopback nodes (the
service node serves the community's protected shard as `--protected-shard` makes it): the
create dialog, the join dialog's fetch states and request, the request queue (accept), a
channel in the chat list with "seen by n" on our message, and the member panel with roles,
the shard and its protection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from harness.fast import FAST
from harness.live_communities import channel_texts, fetched, received_requests, serve_shard
from harness.tui import on, running
from harness.waiting import wait_until
from textual.widgets import DataTable, Input

from chat.config import Config
from chat.events import CommunityView
from chat.session import Session
from ui.app import ChinwagApp
from ui.screens.communities import CommunitiesScreen
from ui.screens.community_dialogs import (
    CommunityLinkScreen,
    JoinCommunityScreen,
    NewCommunityScreen,
)
from ui.screens.community_members import CommunityMembersScreen
from ui.screens.main import MainScreen
from ui.screens.trace import TraceScreen
from ui.widgets.composer import Composer
from ui.widgets.conversation import ConversationView

pytestmark = pytest.mark.slow

SIZE = (130, 40)
RETRIES = 20


def conversation(app: ChinwagApp) -> ConversationView:
    return app.screen.query_one(ConversationView)


def line_with(app: ChinwagApp, text: str) -> str:
    lines = [line for line in conversation(app).visible_text().splitlines() if text in line]
    return lines[-1] if lines else ""


def serve(network: Any, community: CommunityView) -> None:
    """The service node serves and protects the community's shard."""

    async def protect() -> None:
        serve_shard(network.service, community)

    network.run(protect)


def test_create_accept_from_the_queue_and_talk_in_a_channel(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Alice (the TUI) makes an approval-only community with F9 → n; Bob (headless) joins
    by its link; the request waits in Alice's queue (a badge in the chat list) and she
    accepts it; they exchange a message in #general, hers shows "seen by 1"; F7 shows the
    roles and the protected shard."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            assert app.messenger is not None
            await ui.wait_for_text(pilot, "● online")

            await pilot.press("f9")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await pilot.press("n")
            await ui.wait_until(pilot, on(app, NewCommunityScreen))
            await pilot.press("enter")  # no name: the core's refusal, as a sentence
            await ui.wait_until(
                pilot, lambda: str(app.screen.query_one("#new-community-error").render()) != ""
            )
            error = str(app.screen.query_one("#new-community-error").render())
            assert error[:1].isupper() and error.endswith(".")
            await pilot.press(*"Birders")
            app.screen.query_one("#community-about", Input).focus()
            await pilot.press(*"We watch birds", "enter")
            await ui.wait_until(pilot, on(app, MainScreen))
            await ui.wait_until(pilot, lambda: conversation(app).channel, what="#general open")
            await ui.wait_for_text(pilot, "◆ Birders #general")
            await ui.wait_for_text(pilot, "protected (key")
            (community,) = await app.call(app.messenger.communities) or []
            assert community.join_policy == "approval" and community.about == "We watch birds"
            channel = community.channels[0].id
            assert conversation(app).chat_id == channel
            serve(network, community)
            await pilot.press("f9")  # the link to give Bob: l on the community's row
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await ui.wait_for_text(pilot, "l link")
            await pilot.press("l")
            await ui.wait_until(pilot, on(app, CommunityLinkScreen))
            link = str(app.screen.query_one("#community-link-value").render())
            assert link.startswith("chinwag-community:")
            assert "█" in str(app.screen.query_one("#community-qr").render())
            await pilot.press("escape", "escape")
            await ui.wait_until(pilot, on(app, MainScreen))

            await network.arun(fetched, bob, link)
            await network.arun(bob.join_community, link, "let me in")
            await ui.wait_for_text(pilot, "✉ 1 join request", limit=60)
            await pilot.press("f9")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            queue = app.screen.query_one("#requests-table", DataTable)
            await ui.wait_until(pilot, lambda: queue.row_count == 1)
            queue.focus()
            await ui.wait_for_text(pilot, "a accept")  # offered on a pending request to us
            row = [str(cell) for cell in queue.get_row_at(0)]
            assert row[1:4] == ["Bob", "asks to join", "let me in"]
            await pilot.press("a")
            await ui.wait_until(
                pilot, lambda: str(queue.get_row_at(0)[4]).startswith("accepted"), limit=30
            )

            async def bob_member() -> bool:
                return any(c.my_role == "member" for c in await bob.communities())

            await network.arun(wait_until, bob_member, 60)
            await pilot.press("escape")
            await ui.wait_until(pilot, on(app, MainScreen))
            await ui.wait_for_text(pilot, "2 members", limit=30)

            app.screen.query_one(Composer).focus()
            await pilot.press(*"hello birds", "enter")

            async def bob_has_it() -> bool:
                return "hello birds" in await channel_texts(bob, channel)

            await network.arun(wait_until, bob_has_it, 60)
            await network.arun(bob.send_text, channel, "hi alice")
            await ui.wait_until(pilot, lambda: "Bob: hi alice" in line_with(app, "hi alice"))
            await ui.wait_until(
                pilot,
                lambda: "seen by 1" in line_with(app, "hello birds"),
                limit=60,
                what=lambda: f"seen by 1, not {line_with(app, 'hello birds')!r}",
            )
            assert "✓✓" not in line_with(app, "hello birds")  # no "delivered" in a channel
            view = conversation(app)
            view.focus()
            view.cursor = next(i for i, m in enumerate(view.messages) if m.text == "hello birds")
            await pilot.press("t")
            await ui.wait_until(pilot, on(app, TraceScreen))
            head = str(app.screen.query_one("#trace-head").render())
            assert "seen by 1 member so far" in head and "delivered" not in head
            await pilot.press("escape")
            await ui.wait_until(pilot, on(app, MainScreen))

            await pilot.press("f7")
            await ui.wait_until(pilot, on(app, CommunityMembersScreen))
            table = app.screen.query_one(DataTable)
            roles = sorted(str(table.get_row_at(i)[0]) for i in range(table.row_count))
            assert roles == ["member", "owner"]
            shard = str(app.screen.query_one("#community-shard").render())
            assert "protected (key" in shard and f"shard {community.shard.split('/')[-1]}" in shard

    asyncio.run(scenario())


def test_join_by_link_shows_the_fetch_and_the_pending_request(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Bob (headless) owns a community; Alice (the TUI) pastes a bad link (a sentence),
    then its link: fetching → found, a message, Send request; her request shows pending
    with "owner last seen" and its expiry; Bob accepts and #general joins her chat list."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")
    community = network.run(bob.create_community, "Birders", "We watch birds", "approval")
    serve(network, community)
    link, _ = network.run(bob.community_link, community.id)

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await ui.wait_for_text(pilot, "● online")
            await pilot.press("f9")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await pilot.press("j")
            await ui.wait_until(pilot, on(app, JoinCommunityScreen))
            dialog = app.screen
            await pilot.press(*"not a link", "enter")
            await ui.wait_until(
                pilot, lambda: str(dialog.query_one("#join-error").render()).endswith(".")
            )
            field = dialog.query_one("#community-link", Input)
            field.value = link
            await pilot.press("enter")
            await ui.wait_for_text(pilot, "Found Birders", limit=60)
            assert str(dialog.query_one("#join-error").render()) == ""
            await pilot.press(*"hello, it is Alice", "enter")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            queue = app.screen.query_one("#requests-table", DataTable)
            await ui.wait_until(pilot, lambda: queue.row_count == 1)
            row = [str(cell) for cell in queue.get_row_at(0)]
            assert row[:3] == ["Birders", "you", "asked by you"]
            assert row[3] == "hello, it is Alice"
            assert row[4].startswith("pending") and "expires in" in row[4]
            assert "owner last seen" in row[4] or "owner not seen yet" in row[4]
            await ui.wait_for_text(pilot, "c cancel my request")

            (request,) = await network.arun(received_requests, bob, community.id, 1)
            assert request.message == "hello, it is Alice"
            await network.arun(bob.accept_community_request, request.id)
            await ui.wait_until(
                pilot, lambda: str(queue.get_row_at(0)[4]).startswith("accepted"), limit=60
            )
            await pilot.press("escape")
            await ui.wait_until(pilot, on(app, MainScreen))
            await ui.wait_for_text(pilot, "◆ Birders #general", limit=30)

    asyncio.run(scenario())


def test_a_fetch_that_fails_says_why_and_ctrl_r_tries_again(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Nobody serves the community's shard yet: Alice's fetch ends timed out (or not found)
    with the reason and no request can be sent; once the shard is served, Ctrl+R fetches
    again (as often as it takes the store to get the description) and finds it."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")
    community = network.run(bob.create_community, "Birders", "", "approval")
    link, _ = network.run(bob.community_link, community.id)
    quick = replace(FAST.communities, fetch_timeout=2.0)

    async def scenario() -> None:
        override = network.config(communities=quick)
        app = ChinwagApp(Session(config, override=override), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await ui.wait_for_text(pilot, "● online")
            await pilot.press("f9")
            await ui.wait_until(pilot, on(app, CommunitiesScreen))
            await pilot.press("j")
            await ui.wait_until(pilot, on(app, JoinCommunityScreen))
            dialog = app.screen
            dialog.query_one("#community-link", Input).value = link
            await pilot.press("enter")
            state = dialog.query_one("#fetch-state")
            await ui.wait_until(
                pilot,
                lambda: str(state.render()).startswith(("Timed out:", "Not found:")),
                limit=30,
                what=lambda: f"a failed fetch, not {state.render()!s}",
            )
            words = str(state.render())
            assert "no signed description arrived" in words and "Ctrl+R tries again" in words
            assert dialog.query_one("#send-join").disabled
            serve(network, community)
            # Each try waits the short fetch timeout; the store may get Bob's description
            # (re-published until a peer takes it) only after the first tries: retry as a
            # user would, until found.
            for _ in range(RETRIES):
                await pilot.press("ctrl+r")
                await ui.wait_until(
                    pilot, lambda: not str(state.render()).startswith("Fetching"), limit=30
                )
                if str(state.render()).startswith("Found Birders"):
                    break
            assert str(state.render()).startswith("Found Birders"), str(state.render())
            assert not dialog.query_one("#send-join").disabled

    asyncio.run(scenario())
