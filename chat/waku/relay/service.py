"""Relay as a node service: the router, its trio driver and the validator pipeline, plus
the fan-out of accepted messages to whoever needs them (archive, filter server, the app).

Every accepted message, whether relayed to us or published by us, reaches every sink once,
as (pubsub topic, decoded message, encoded bytes exactly as on the wire). Sinks are plain
callables that must not block: they run on the relay's task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import trio

from chat.waku.host import WakuHost
from chat.waku.message import MessageError, WakuMessage, now_ns
from chat.waku.relay.core import Deliver, Router
from chat.waku.relay.driver import DriverLimits, RelayDriver
from chat.waku.relay.faults import RelayFaults
from chat.waku.relay.verdict import Accept, Ignore, Reject, ValidationResult
from chat.waku.validation import Outcome, RelayValidator, ShardSigner

log = logging.getLogger(__name__)

MessageSink = Callable[[str, WakuMessage, bytes], None]


def router_validator(validator: RelayValidator) -> Callable[[str, bytes, Any], ValidationResult]:
    """Adapts the validation pipeline's verdicts to the router's callback contract."""

    def check(topic: str, data: bytes, peer: Any) -> ValidationResult:
        verdict = validator(topic, data, peer)
        if verdict.outcome is Outcome.ACCEPT:
            return Accept(verdict.message)
        if verdict.outcome is Outcome.REJECT:
            return Reject(verdict.reason)
        return Ignore(verdict.reason)

    return check


class RelayService:
    name = "relay"

    def __init__(
        self,
        pubsub_topics: Sequence[str],
        *,
        validator: RelayValidator | None = None,
        signer: ShardSigner | None = None,
        limits: DriverLimits | None = None,
        faults: RelayFaults | None = None,
    ) -> None:
        self.validator = validator or RelayValidator(clock=now_ns)
        self.signer = signer or ShardSigner()
        self.router = Router(validator=router_validator(self.validator))
        self._limits = limits
        self.faults = faults
        self._topics = list(dict.fromkeys(pubsub_topics))
        self._sinks: list[MessageSink] = []
        self._driver: RelayDriver | None = None
        self._nursery: trio.Nursery | None = None

    @property
    def driver(self) -> RelayDriver:
        if self._driver is None:
            raise RuntimeError("relay is not running")
        return self._driver

    @property
    def topics(self) -> list[str]:
        return list(self._topics)

    def add_sink(self, sink: MessageSink) -> None:
        self._sinks.append(sink)

    async def serve(self, host: WakuHost, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        driver = RelayDriver(host.libp2p, self.router, limits=self._limits, faults=self.faults)
        async with trio.open_nursery() as nursery:
            await nursery.start(driver.run)
            self._driver = driver
            self._nursery = nursery
            for topic in self._topics:
                self._start_topic(topic)
            # A full node never closes a mesh peer's connection to make room for a newcomer.
            host.inbound.add_keeper(self.in_mesh)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                host.inbound.remove_keeper(self.in_mesh)
                self._driver = None
                self._nursery = None

    def in_mesh(self, peer: Hashable) -> bool:
        """Whether the peer is in our mesh of any shard."""
        return any(peer in mesh for mesh in self.router.mesh.values())

    def subscribe(self, pubsub_topic: str) -> None:
        """Join a shard at run time (a community shard, say)."""
        if pubsub_topic in self._topics:
            return
        self._topics.append(pubsub_topic)
        if self._nursery is not None:
            self._start_topic(pubsub_topic)

    def _start_topic(self, topic: str) -> None:
        assert self._nursery is not None
        channel = self.driver.subscribe(topic)
        self._nursery.start_soon(self._pump, topic, channel)

    async def _pump(self, topic: str, channel: trio.MemoryReceiveChannel[Deliver]) -> None:
        async with channel:
            async for delivery in channel:
                self._accept(topic, delivery)
                # Take everything else already waiting in this same turn: the reader queues a
                # whole chunk's messages per turn, so one message per turn would let a burst
                # overflow the bounded channel (counted drops) while the CPU sits idle.
                while True:
                    try:
                        delivery = channel.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    self._accept(topic, delivery)

    def _accept(self, topic: str, delivery: Deliver) -> None:
        message = delivery.decoded
        if not isinstance(message, WakuMessage):  # a validator that did not decode it
            try:
                message = WakuMessage.decode(delivery.data)
            except MessageError:  # the validator already refused these; belt and braces
                return
        self._fan_out(topic, message, delivery.data)

    def _fan_out(self, topic: str, message: WakuMessage, data: bytes) -> None:
        for sink in self._sinks:
            try:
                sink(topic, message, data)
            except Exception:  # one broken consumer must not stop relay for the others
                log.exception("relay message sink %r failed", sink)

    async def wait_for_room(self, pubsub_topic: str) -> bool:
        """For publishers of many messages: wait (boundedly) until our send queues to the
        shard's relay peers are at most half full. See `RelayDriver.wait_for_room`."""
        return await self.driver.wait_for_room(pubsub_topic)

    def publish(self, pubsub_topic: str, message: WakuMessage) -> int:
        """Sign (on protected shards), validate like a received message, publish, and hand
        it to our own sinks. Returns the number of peers reached; raises the router's
        NoPeersReached when there were none, and ValueError when our own validator refuses."""
        message = self.signer.prepare(pubsub_topic, message)
        data = message.encode()
        verdict = self.validator(pubsub_topic, data, None)
        if verdict.outcome is not Outcome.ACCEPT:
            raise ValueError(f"message refused before publishing: {verdict.reason}")
        reached = self.driver.publish(pubsub_topic, data)
        self._fan_out(pubsub_topic, message, data)
        return reached
