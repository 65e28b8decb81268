"""A group formed the way people form one: all invitations at once, accepted at about the
same moment. On real nodes over loopback (one service node, real SQLCipher profiles)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from harness.live_groups import accept_invitation, all_see, befriend

pytestmark = pytest.mark.slow


async def test_nine_invited_at_once_and_accepting_together_all_see_everyone_joined(
    net: Any,
) -> None:
    """Found by tests/bench/groups.py --invite-at-once: the first invitees' invitations held
    only themselves, and invitees who accepted together saw each other only invited (no
    share between them) until frames were sent again a minute or more later. Within 30 s
    every member must see every other joined."""
    await net.start_service()
    names = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
    people = [await net.start(name) for name in names]
    admin, invitees = people[0], people[1:]
    for invitee in invitees:
        await befriend(admin, invitee)
    group = await admin.create_group("Trip", [p.identity().chat_key for p in invitees])
    async with trio.open_nursery() as nursery:
        for invitee in invitees:
            nursery.start_soon(accept_invitation, invitee, group.id)
    everyone = {p.identity().display_name: "joined" for p in people}
    await all_see(group.id, everyone, *people, limit=30.0)
