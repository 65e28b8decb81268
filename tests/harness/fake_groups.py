"""Helpers for the private-group tests on the fake network (tests/unit/messenger): what a
member reads, sees of the member list, and refused."""

from __future__ import annotations

from typing import Any

from harness.fake_messengers import Running
from harness.waiting import wait_until


async def texts(running: Running, chat_id: str, kind: str = "text") -> list[str]:
    """What others wrote in the chat (or its system lines), oldest first."""
    found = await running.messenger.messages(chat_id, limit=500)
    return [m.text for m in found if m.kind == kind and (kind == "system" or not m.outgoing)]


def group_rejections(running: Running) -> list[str]:
    """What was refused, but for Olm messages of another person's contact-request partition
    (32 partitions: two test profiles may share one, and read each other's requests)."""
    return [r for r in running.rejections() if not r.startswith("cannot decrypt:")]


async def members_of(running: Running, group_id: str) -> dict[str, str]:
    view = await running.messenger.group(group_id)
    return {m.display_name: m.state for m in view.members}


async def all_see(
    group_id: str, expected: dict[str, str], *people: Running, limit: float = 30.0
) -> None:
    async def agreed() -> bool:
        return all([await members_of(p, group_id) == expected for p in people])

    async def what() -> str:
        return repr([await members_of(p, group_id) for p in people])

    try:
        await wait_until(agreed, limit)
    except Exception:
        raise AssertionError(await what()) from None


def group_messages(running: Running) -> list[Any]:
    return [(t, m) for t, m in running.node.published if "/group-" in m.content_topic]
