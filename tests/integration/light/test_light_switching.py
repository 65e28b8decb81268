"""A profile moves between relay and light mode across restarts: messages sent while it was
away arrive once, nothing it sent is lost, nothing is shown twice."""

from __future__ import annotations

import pytest
from harness.light_network import LightNet, light_ready
from harness.live_groups import befriend, sent, texts
from harness.waiting import wait_until

from chat.messenger import Messenger

pytestmark = pytest.mark.slow


async def delivered(messenger: Messenger, chat_id: str, count: int) -> bool:
    mine = await sent(messenger, chat_id)
    return len(mine) == count and all(m.state == "delivered" for m in mine)


async def test_relay_to_light_and_back_across_restarts_loses_and_repeats_nothing(
    light_net: LightNet,
) -> None:
    await light_net.start_services()
    lena = await light_net.start("lena", light=False)
    rob = await light_net.start("rob", light=False)
    await befriend(lena, rob)
    chat_id = next(c.id for c in await lena.chats() if c.kind == "direct")
    await rob.send_text(chat_id, "rob 0")
    await lena.send_text(chat_id, "lena 0")
    await wait_until(lambda: delivered(lena, chat_id, 1))

    expected = ["rob 0"]
    for round_number, light in enumerate((True, False, True), start=1):
        await light_net.stop("lena")
        await rob.send_text(chat_id, f"rob {round_number}")  # while she is away
        expected.append(f"rob {round_number}")
        lena = await light_net.start("lena", light=light)
        if light:
            await wait_until(lambda: light_ready(lena), 30)  # noqa: B023
        await lena.send_text(chat_id, f"lena {round_number}")

        async def caught_up() -> bool:
            return await texts(lena, chat_id) == expected  # noqa: B023

        await wait_until(caught_up, 30)
        await wait_until(lambda: delivered(lena, chat_id, round_number + 1), 30)  # noqa: B023
    assert await texts(rob, chat_id) == [f"lena {i}" for i in range(4)]
    assert await texts(lena, chat_id) == [f"rob {i}" for i in range(4)]  # each once
