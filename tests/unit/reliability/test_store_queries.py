"""The store query driver against the fake network's store (real archive and planner)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio
from harness.fake_node import FakeNetwork

from chat.reliability.store_checks import CursorAdvanced, StoreCheckParams, StoreChecks, Stored
from chat.reliability.store_queries import NO_STORE_RECHECK, QUERIES_IN_FLIGHT, StoreQueries
from chat.waku.message import WakuMessage

CONTENT_TOPIC = "/chinwag/1/dm-test/proto"


class Answers:
    """Records what the driver reports."""

    def __init__(self) -> None:
        self.stored_events: list[Stored] = []
        self.cursors: list[CursorAdvanced] = []
        self.fetched_hashes: list[bytes] = []
        self.reached: list[bool] = []
        self.codes: list[str] = []
        """Why each failed (telemetry's error code)."""
        self.scans_failed = 0

    async def stored(self, event: Stored) -> None:
        self.stored_events.append(event)

    async def cursor_advanced(self, event: CursorAdvanced, now: float) -> None:
        self.cursors.append(event)

    async def fetched(self, pubsub_topic: str, message: WakuMessage, msg_hash: bytes) -> None:
        self.fetched_hashes.append(msg_hash)

    def scan_failed(self) -> None:
        self.scans_failed += 1

    def store_reached(self, ok: bool, code: str = "other") -> None:
        self.reached.append(ok)
        self.codes.append(code)


def _driver(network: FakeNetwork, answers: Any, checks: StoreChecks) -> StoreQueries:
    node = network.node("alice")
    return StoreQueries(
        checks,
        node,
        answers,
        lock=trio.Lock(),
        clock=trio.current_time,
        wake=lambda: None,
        default_pubsub_topic=node.pubsub_topic(0),
    )


async def test_due_queries_wait_for_a_store_node_instead_of_being_due_again_and_again(
    autojump_clock: Any,
) -> None:
    network = FakeNetwork()
    checks = StoreChecks(StoreCheckParams())
    driver = _driver(network, Answers(), checks)
    checks.watch(network.nodes[0].pubsub_topic(0), (CONTENT_TOPIC,), None, trio.current_time())
    checks.catch_up(trio.current_time())
    assert driver.next_wakeup() == trio.current_time()  # a store node: the scan is due now

    network.nodes[0].set_online(False)  # no store node connected
    now = trio.current_time()
    await driver.run_due(now)  # nothing can run...
    wake = driver.next_wakeup()
    assert wake is not None and wake == now + NO_STORE_RECHECK  # ...so nothing is due now
    network.close()


async def test_a_scan_a_presence_check_and_a_fetch_answered_by_the_store(
    autojump_clock: Any,
) -> None:
    network = FakeNetwork()
    answers = Answers()
    checks = StoreChecks(StoreCheckParams(first_check_after=1.0, settle=0.0))
    driver = _driver(network, answers, checks)
    alice = network.nodes[0]
    bob = network.node("bob")
    topic = alice.pubsub_topic(0)
    stamp = int(trio.current_time() * 1e9) + 1
    ours = WakuMessage(b"ours", CONTENT_TOPIC, timestamp=stamp)
    missed = WakuMessage(b"missed", CONTENT_TOPIC, timestamp=stamp + 1)
    alice.publish(topic, ours)  # archived by the store
    bob.publish(topic, missed)
    msg_hash = ours.hash(topic)
    missed_hash = missed.hash(topic)
    checks.watch(topic, (CONTENT_TOPIC,), 0.0, trio.current_time())
    checks.track(msg_hash, trio.current_time())
    checks.received(msg_hash, trio.current_time())  # as the messenger marks what it publishes
    async with trio.open_nursery() as nursery:
        driver.attach(nursery)
        await trio.sleep(2)
        await driver.run_due(trio.current_time())  # the scan, and the presence check
        await trio.testing.wait_all_tasks_blocked()
        await driver.run_due(trio.current_time())  # the fetch the scan asked for
        await trio.testing.wait_all_tasks_blocked()
    assert [e.msg_hash for e in answers.stored_events] == [msg_hash]
    assert len(answers.cursors) == 1 and answers.fetched_hashes == [missed_hash]
    assert answers.reached and all(answers.reached)
    network.store_answers = False
    checks.catch_up(trio.current_time())
    async with trio.open_nursery() as nursery:
        driver.attach(nursery)
        await driver.run_due(trio.current_time())
        await trio.testing.wait_all_tasks_blocked()
    assert answers.scans_failed == 1 and answers.reached[-1] is False
    assert answers.codes[-1] == "timeout"  # the store never answered
    network.close()


class SlowStore:
    """The fake network's store client, answering presence checks after `delay` seconds and
    counting how many it holds at once."""

    def __init__(self, store: Any, delay: float) -> None:
        self._store = store
        self._delay = delay
        self.open = 0
        self.most_open = 0
        self.asked = 0

    async def present(self, peer_id: Any, message_hashes: Sequence[bytes]) -> set[bytes]:
        self.open += 1
        self.asked += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await trio.sleep(self._delay)
            return set(await self._store.present(peer_id, message_hashes))
        finally:
            self.open -= 1

    async def query_all(self, peer_id: Any, request: Any) -> Any:
        return await self._store.query_all(peer_id, request)


class SlowNode:
    """A fake node whose store answers slowly, as over a lossy link."""

    def __init__(self, node: Any, delay: float) -> None:
        self._node = node
        self.store = SlowStore(node.store, delay)

    def store_peers(self) -> Any:
        return self._node.store_peers()

    def record_store(self, peer: Any, ok: bool) -> None:
        self._node.record_store(peer, ok)


async def test_presence_checks_that_pile_up_stay_under_what_a_store_node_lets_one_peer_open(
    autojump_clock: Any,
) -> None:
    """A store node answers a peer's ninth open query with 429: found over a 30 % loss link,
    where every message's check started at once and the ninth and later were refused."""
    network = FakeNetwork()
    answers = Answers()
    checks = StoreChecks(StoreCheckParams(first_check_after=0.0))
    node = SlowNode(network.node("alice"), delay=5.0)
    driver = StoreQueries(
        checks,
        node,
        answers,
        lock=trio.Lock(),
        clock=trio.current_time,
        wake=lambda: None,
        default_pubsub_topic=network.nodes[0].pubsub_topic(0),
    )
    async with trio.open_nursery() as nursery:
        driver.attach(nursery)
        for index in range(20):  # one message a tenth of a second: one check each
            checks.track(bytes([index]) * 32, trio.current_time())
            await driver.run_due(trio.current_time())
            await trio.sleep(0.1)
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(60)
    assert node.store.asked == 20
    assert node.store.most_open == QUERIES_IN_FLIGHT < 8
    network.close()
