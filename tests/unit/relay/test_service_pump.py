"""The relay service hands accepted messages to its sinks as fast as the driver queues them."""

from __future__ import annotations

import trio
import trio.lowlevel

from chat.waku.message import WakuMessage
from chat.waku.relay.core import Deliver
from chat.waku.relay.service import RelayService
from chat.waku.relay.wire import message_id

TOPIC = "/waku/2/rs/42/0"


def _delivery(i: int) -> Deliver:
    data = WakuMessage(f"m{i}".encode(), "/t/1/x/proto", timestamp=1 + i).encode()
    return Deliver(TOPIC, data, message_id(data), "peer")


async def test_a_burst_queued_in_one_turn_is_drained_without_overflowing_the_channel() -> None:
    # The driver's reader queues a whole chunk's messages per scheduler turn; the pump must
    # take all of them per turn, or the bounded channel overflows while the CPU idles.
    service = RelayService([TOPIC])
    got: list[bytes] = []
    service.add_sink(lambda topic, msg, data: got.append(msg.payload))
    send, receive = trio.open_memory_channel[Deliver](16)
    refused = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service._pump, TOPIC, receive)
        for turn in range(40):
            for i in range(5):
                try:
                    send.send_nowait(_delivery(turn * 5 + i))
                except trio.WouldBlock:
                    refused += 1
            await trio.lowlevel.checkpoint()
        await send.aclose()
    assert refused == 0
    assert got == [f"m{i}".encode() for i in range(200)]


async def test_the_pump_ends_when_the_channel_closes_with_messages_still_queued() -> None:
    service = RelayService([TOPIC])
    got: list[bytes] = []
    service.add_sink(lambda topic, msg, data: got.append(msg.payload))
    send, receive = trio.open_memory_channel[Deliver](8)
    for i in range(3):
        send.send_nowait(_delivery(i))
    send.close()
    with trio.fail_after(1):
        await service._pump(TOPIC, receive)
    assert got == [b"m0", b"m1", b"m2"]


async def test_a_message_the_validator_decoded_is_not_decoded_again() -> None:
    service = RelayService([TOPIC])
    got: list[tuple[WakuMessage, bytes]] = []
    service.add_sink(lambda topic, msg, data: got.append((msg, data)))
    decoded = WakuMessage(b"from the validator", "/t/1/x/proto", timestamp=1)
    send, receive = trio.open_memory_channel[Deliver](8)
    # The data is not even a WakuMessage: only the validator's decoded form can reach the sink.
    send.send_nowait(Deliver(TOPIC, b"\xff", message_id(b"\xff"), "peer", decoded))
    send.send_nowait(_delivery(7))
    send.close()
    await service._pump(TOPIC, receive)
    assert got[0] == (decoded, b"\xff")
    assert got[1][0].payload == b"m7"  # no decoded form: decoded here
