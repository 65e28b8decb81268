"""Pilot tests of the private-group screens against real messengers on loopback nodes: the
new-group dialog, invitations beside contact requests, the member panel (only what we may
do offered, refusals as a sentence), `✓✓ n/m` on our messages, the trace's member list, and
system lines for joins, removals, renames and leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from harness.tui import befriend_headless, on, running
from harness.waiting import wait_until
from textual.widgets import DataTable, Input, SelectionList

from chat.config import Config
from chat.session import Session
from ui.app import ChinwagApp
from ui.format import ACKNOWLEDGED
from ui.screens.contacts import ContactsScreen
from ui.screens.group_dialogs import LeaveGroupScreen, PickContactScreen, RenameGroupScreen
from ui.screens.main import MainScreen
from ui.screens.members import MembersScreen
from ui.screens.new_group import NewGroupScreen
from ui.screens.outbox import OutboxScreen
from ui.screens.trace import TraceScreen
from ui.widgets.chat_list import ChatList
from ui.widgets.composer import Composer
from ui.widgets.conversation import ConversationView

pytestmark = pytest.mark.slow

SIZE = (120, 40)


def conversation(app: ChinwagApp) -> ConversationView:
    return app.screen.query_one(ConversationView)


def line_with(app: ChinwagApp, text: str) -> str:
    """The conversation's (last) line that shows `text`."""
    lines = [line for line in conversation(app).visible_text().splitlines() if text in line]
    return lines[-1] if lines else ""


async def accept_invitation(person: Any, group_id: str) -> None:
    """On the network thread: once `person` has the invitation, they accept it."""

    async def invited() -> bool:
        return any(i.group_id == group_id for i in await person.invites())

    await wait_until(invited, what="the invitation to arrive")
    (invite,) = [i for i in await person.invites() if i.group_id == group_id]
    await person.accept_invite(invite.id)


def test_create_a_group_chat_with_counts_trace_members_and_system_lines(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Alice (the TUI) makes a group of Bob and Carol with F5; they accept; her message
    reaches ✓✓ 2/2 and its trace lists both as acknowledged. In the member panel she makes
    Bob an admin, removes Carol and renames the group; each shows as a system line."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")
    carol = network.start_messenger("carol")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            assert app.messenger is not None
            await befriend_headless(app, pilot, network, ui, bob)
            await befriend_headless(app, pilot, network, ui, carol)
            await ui.wait_for_text(pilot, "f5 New group")  # the footer offers it

            await pilot.press("f5")
            await ui.wait_until(pilot, on(app, NewGroupScreen))
            dialog = app.screen
            assert isinstance(dialog, NewGroupScreen)
            await ui.wait_until(pilot, lambda: len(dialog.contacts) == 2, what="two contacts")
            await pilot.press("enter")  # no name: the core's refusal, as a sentence
            await ui.wait_for_text(pilot, "empty")
            error = str(dialog.query_one("#new-group-error").render())
            assert error[:1].isupper() and error.endswith(".")
            await pilot.press(*"Friends")
            picker = dialog.query_one(SelectionList)
            picker.focus()
            picker.highlighted = 0
            await pilot.press("space", "down", "space")
            assert len(dialog.picked) == 2
            await pilot.click("#create-group")
            await ui.wait_until(pilot, running(app))
            main = app.screen
            assert isinstance(main, MainScreen)
            await ui.wait_until(pilot, lambda: conversation(app).group, what="the group open")
            group_id = conversation(app).chat_id
            assert group_id is not None
            await ui.wait_for_text(pilot, "# Friends")  # the chat list and the title
            await ui.wait_until(
                pilot, lambda: "· Alice invited Bob" in line_with(app, "invited Bob")
            )
            assert "Alice: " not in line_with(app, "invited Bob")  # a system line, no sender
            await ui.wait_for_text(pilot, "f7 Members")  # offered in a group chat

            await network.arun(accept_invitation, bob, group_id)
            await network.arun(accept_invitation, carol, group_id)
            await ui.wait_until(pilot, lambda: "· Bob joined" in line_with(app, "Bob joined"))
            await ui.wait_until(pilot, lambda: "· Carol joined" in line_with(app, "Carol joined"))
            await ui.wait_for_text(pilot, "group of 3")

            main.query_one(Composer).focus()
            await pilot.press(*"hello group", "enter")
            await ui.wait_until(
                pilot,
                lambda: "✓✓ 2/2   Alice: hello group" in line_with(app, "hello group"),
                limit=60,
                what=lambda: f"✓✓ 2/2, not {line_with(app, 'hello group')!r}",
            )

            async def carol_has_it() -> bool:
                return any(m.text == "hello group" for m in await carol.messages(group_id))

            await network.arun(wait_until, carol_has_it)
            await network.arun(bob.send_text, group_id, "hi all")
            await ui.wait_until(pilot, lambda: "Bob: hi all" in line_with(app, "hi all"))

            view = conversation(app)
            view.focus()
            view.cursor = next(i for i, m in enumerate(view.messages) if m.text == "hello group")
            await pilot.press("t")
            await ui.wait_until(pilot, on(app, TraceScreen))
            await ui.wait_for_text(pilot, "Members (2 it was sent to)")
            members = app.screen.query_one("#trace-members", DataTable)
            rows = [members.get_row_at(i) for i in range(members.row_count)]
            assert sorted((str(r[0]), str(r[1])) for r in rows) == [
                ("Bob", ACKNOWLEDGED),
                ("Carol", ACKNOWLEDGED),
            ]
            await pilot.press("escape")

            await ui.wait_until(pilot, running(app))
            await pilot.press("f7")
            await ui.wait_until(pilot, on(app, MembersScreen))
            panel = app.screen
            assert isinstance(panel, MembersScreen)
            await ui.wait_for_text(pilot, "You are an admin")
            table = panel.query_one(DataTable)
            bob_key = bob.identity().chat_key
            carol_key = carol.identity().chat_key
            table.move_cursor(row=table.get_row_index(bob_key))
            await pilot.press("m")
            await ui.wait_until(pilot, lambda: bob_key in panel.group.admins, what="Bob admin")
            assert str(table.get_row_at(table.get_row_index(bob_key))[0]) == "★"
            table.move_cursor(row=table.get_row_index(carol_key))
            await pilot.press("x")
            await ui.wait_until(
                pilot,
                lambda: any(
                    m.chat_key == carol_key and m.state == "removed" for m in panel.group.members
                ),
                what="Carol removed",
            )
            await pilot.press("n")
            await ui.wait_until(pilot, on(app, RenameGroupScreen))
            field = app.screen.query_one(Input)
            field.value = " "
            await pilot.press("enter")  # the core refuses an empty name: one sentence
            await ui.wait_until(
                pilot,
                lambda: str(app.screen.query_one("#rename-error").render()).endswith("."),
                what="the refusal",
            )
            refusal = str(app.screen.query_one("#rename-error").render())
            assert refusal[:1].isupper() and "\n" not in refusal.strip(), refusal
            field.value = ""
            await pilot.press(*"Best friends", "enter")
            await ui.wait_until(pilot, on(app, MembersScreen))
            await ui.wait_for_text(pilot, "# Best friends  ·  group of 2")
            await pilot.press("a")
            await ui.wait_until(pilot, on(app, PickContactScreen))
            await ui.wait_for_text(pilot, "Carol")  # removed: she may be invited again
            assert "Bob  ·" not in ui.screen_text(app)  # a member already
            await pilot.press("enter")
            await ui.wait_until(pilot, on(app, MembersScreen))
            await ui.wait_until(
                pilot,
                lambda: any(
                    m.chat_key == carol_key and m.state == "invited" for m in panel.group.members
                ),
                what="Carol invited again",
            )
            await ui.wait_for_text(pilot, "invited, not answered yet")
            await pilot.press("escape")

            # Her invitation waits in the outbox until she answers; d withdraws it.
            await ui.wait_until(pilot, running(app))
            await pilot.press("f3")
            await ui.wait_until(pilot, on(app, OutboxScreen))
            await ui.wait_for_text(pilot, "group invitation")
            assert "invitation to Best friends for Carol" in ui.screen_text(app)
            outbox = app.screen
            assert isinstance(outbox, OutboxScreen)
            outbox.query_one(DataTable).move_cursor(
                row=next(i for i, item in enumerate(outbox.items) if item.kind == "group_invite")
            )
            await pilot.press("d")
            await ui.wait_until(
                pilot,
                lambda: all(item.kind != "group_invite" for item in outbox.items),
                what="the invitation withdrawn",
            )
            await pilot.press("escape")

            await ui.wait_until(pilot, running(app))
            for line in (
                "· Alice made Bob an admin",
                "· Alice removed Carol",
                "· Alice renamed the group to “Best friends”",
            ):
                await ui.wait_until(pilot, lambda line=line: line in view.visible_text())
            await ui.wait_for_text(pilot, "▌# Best friends")
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


def test_an_invitation_beside_the_requests_then_a_member_may_only_leave(
    config: Config, network: Any, ui: Any, make_profile: Callable[[str], None]
) -> None:
    """Bob (headless) invites Alice to two groups: the chat list's badge and the contacts
    screen show the invitations; she declines one (Bob's group says so) and accepts the
    other there, and opens that group. Not an admin, her member panel
    offers only leaving; she leaves, and the conversation says so."""
    make_profile("Alice")
    network.start_service()
    bob = network.start_messenger("bob")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            alice_key = await befriend_headless(app, pilot, network, ui, bob)
            chess = await network.arun(bob.create_group, "Chess", [alice_key])
            group = await network.arun(bob.create_group, "Book club", [alice_key])
            await ui.wait_for_text(pilot, "✉ 2 group invitations")
            chat_list = app.screen.query_one(ChatList)
            chat_list.focus()
            chat_list.highlighted = 0
            await pilot.press("enter")
            await ui.wait_until(pilot, on(app, ContactsScreen))
            await ui.wait_for_text(pilot, "Bob invited you")
            assert "waiting for your answer; expires in" in ui.screen_text(app)
            invites = app.screen.query_one("#invites-table", DataTable)
            invites.focus()
            await ui.wait_for_text(pilot, "a accept · d decline the group invitation")
            contacts = app.screen
            assert isinstance(contacts, ContactsScreen)

            def row_of(name: str) -> int:
                return next(
                    invites.get_row_index(i.id) for i in contacts.invites.values() if i.name == name
                )

            invites.move_cursor(row=row_of("Chess"))
            await pilot.press("d")
            await ui.wait_for_text(pilot, "you declined")

            async def bob_sees_the_decline() -> bool:
                view = await bob.group(chess.id)
                return any(m.chat_key == alice_key and m.state == "declined" for m in view.members)

            await network.arun(wait_until, bob_sees_the_decline)
            invites.move_cursor(row=row_of("Book club"))
            await pilot.press("a")
            await ui.wait_for_text(pilot, "You joined Book club")
            await ui.wait_for_text(pilot, "you joined")
            await pilot.press("enter")
            await ui.wait_until(pilot, running(app))
            await ui.wait_until(pilot, lambda: conversation(app).chat_id == group.id)
            await ui.wait_until(pilot, lambda: "· Alice joined" in line_with(app, "Alice joined"))
            assert "✉" not in ui.screen_text(app)  # answered: no badge

            await pilot.press("f7")
            await ui.wait_until(pilot, on(app, MembersScreen))
            panel = app.screen
            assert isinstance(panel, MembersScreen)
            await ui.wait_for_text(pilot, "You are a member")
            hint = str(panel.query_one("#members-hint").render())
            assert hint == "l leave · Esc closes"
            assert panel.check_action("remove", ()) is False
            assert panel.check_action("add", ()) is False
            await pilot.press("x")  # not offered: nothing happens
            assert isinstance(app.screen, MembersScreen)
            await pilot.press("l")
            await ui.wait_until(pilot, on(app, LeaveGroupScreen))
            await pilot.press("y")
            await ui.wait_until(pilot, on(app, MembersScreen))
            await ui.wait_for_text(pilot, "you left")
            assert str(panel.query_one("#members-hint").render()) == "Esc closes"
            await pilot.press("escape")
            await ui.wait_until(pilot, lambda: "· Alice left" in line_with(app, "Alice left"))

            async def bob_sees_her_leave() -> bool:
                view = await bob.group(group.id)
                return any(m.chat_key == alice_key and m.state == "left" for m in view.members)

            await network.arun(wait_until, bob_sees_her_leave)
            await pilot.press("ctrl+p", *"new group")
            await ui.wait_for_text(pilot, "A private group with contacts you pick")
            await pilot.press("enter")
            await ui.wait_until(pilot, on(app, NewGroupScreen))
            await ui.wait_for_text(pilot, "Bob  ·  cw1")
            await pilot.press("escape")
            await ui.wait_until(pilot, running(app))
            await pilot.press("ctrl+q")

    asyncio.run(scenario())
