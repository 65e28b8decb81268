"""The parts that make a messenger-mode run repeat although its keys and hashes are new each
run (chat/lab/steady.py, the sim store's answer order): each is checked on its own here; the
whole run repeating is tests/sim/test_lab_messenger_sim.py."""

from __future__ import annotations

from pathlib import Path

import trio
import trio._core._run as trio_run
from trio.testing import MockClock

from chat.direct import CONTACT_REQUEST_PARTITIONS, contact_request_partition
from chat.identity_store import ensure_identity
from chat.lab.sim_network import SimNetwork
from chat.lab.steady import fixed_partition_identity, steady_scheduling
from chat.waku.message import WakuMessage
from chat.waku.relay.sim import uniform_latency
from chat.waku.store.wire import StoreQueryRequest
from storage.kdf import KdfParams
from storage.profiles import Profiles

TASKS = 12


async def _wake_order() -> list[int]:
    """Tasks that all become ready at one instant: the order they then run in."""
    order: list[int] = []
    go = trio.Event()

    async def waiter(index: int) -> None:
        await go.wait()
        order.append(index)

    async with trio.open_nursery() as nursery:
        for index in range(TASKS):
            nursery.start_soon(waiter, index)
        await trio.sleep(1)
        go.set()
    return order


def test_steady_scheduling_runs_tasks_ready_at_one_instant_in_one_fixed_order() -> None:
    # Without it trio reverses each batch half of the time: 20 runs would all agree with a
    # chance of about one in a million.
    before = (trio_run._ALLOW_DETERMINISTIC_SCHEDULING, trio_run._r)
    with steady_scheduling():
        orders = [trio.run(_wake_order, clock=MockClock(autojump_threshold=0)) for _ in range(20)]
    # trio runs a sorted batch from its end: the newest task first.
    assert all(order == list(reversed(range(TASKS))) for order in orders)
    # trio's own scheduling is back after the block (under pytest, Hypothesis's plugin has
    # already switched trio to sort-then-shuffle with its generator).
    assert (trio_run._ALLOW_DETERMINISTIC_SCHEDULING, trio_run._r) == before


def test_each_client_gets_the_contact_request_partition_its_index_names(tmp_path: Path) -> None:
    profiles = Profiles(tmp_path)
    for index in (0, 7, CONTACT_REQUEST_PARTITIONS + 3):
        name = f"c{index:03d}"
        kdf = KdfParams.fresh(opslimit=1, memlimit=8192)
        store = profiles.create(name, "pass", display_name=name, now=1_000, kdf=kdf)
        try:
            planted = fixed_partition_identity(store, index, 1_700_000_000.0)
            assert contact_request_partition(planted.chat_key) == index % CONTACT_REQUEST_PARTITIONS
            # The messenger's start-up loads this identity rather than making its own.
            assert ensure_identity(store, 1_700_000_000.0).chat_key == planted.chat_key
        finally:
            store.close()


def test_sim_store_answers_break_timestamp_ties_by_arrival_not_hash() -> None:
    network = SimNetwork(seed=1, services=1, latency=uniform_latency(0.01, 0.01), loss=0.0)
    client = network.client("c000", 0)
    service = network.services[0]
    pubsub_topic = client.pubsub_topic(0)
    topic = "/chinwag/1/dm-test/proto"
    same_instant = [WakuMessage(bytes([n]), topic, timestamp=2_000) for n in range(8)]
    by_hash = sorted(same_instant, key=lambda m: m.hash(pubsub_topic))
    arrival = [*reversed(by_hash), WakuMessage(b"earlier", topic, timestamp=1_000)]
    for message in arrival:
        assert service.keep(pubsub_topic, message, message.hash(pubsub_topic), 0.0)
    request = StoreQueryRequest(
        request_id="scan",
        include_data=True,
        pubsub_topic=pubsub_topic,
        content_topics=(topic,),
        pagination_forward=True,
        pagination_limit=3,
    )

    async def ask() -> list[bytes]:
        answer = await client.store.query_all(None, request)
        return [kv.message.payload for kv in answer if kv.message is not None]

    try:
        payloads = trio.run(ask, clock=MockClock(autojump_threshold=0))
    finally:
        network.close()
    # Timestamp order first (as a real store), then the order the node received them.
    assert payloads == [b"earlier"] + [m.payload for m in reversed(by_hash)]
