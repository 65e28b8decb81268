"""The profile's transport: relay today (light push + filter for weak links next).

It turns the node's answers into the pipeline's terms: evidence when the network took a
message, and PublishFailed with whether trying again can help.
"""

from __future__ import annotations

import logging
from typing import Any

from chat.messenger.conversation import PublishFailed, Transport
from chat.messenger.node import MessengerNode
from chat.waku.message import WakuMessage
from chat.waku.relay.core import NoPeersReached

log = logging.getLogger(__name__)


class RelayTransport:
    def __init__(self, node: MessengerNode) -> None:
        self._node = node

    def publish(self, pubsub_topic: str, message: WakuMessage) -> dict[str, Any]:
        try:
            reached = self._node.publish(pubsub_topic, message)
        except NoPeersReached:
            raise PublishFailed("no peers", permanent=False) from None
        except ValueError as exc:  # refused by our own validators: too large, invalid
            raise PublishFailed(str(exc), permanent=True) from None
        return {"peers_reached": reached}

    def reachable(self, pubsub_topic: str) -> bool:
        return self._node.relay_peers().get(pubsub_topic, 0) > 0


class BestEffort:
    """For messages whose own flow sends them again (contact requests and answers,
    verification steps): a failure is only logged."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def publish(self, pubsub_topic: str, message: WakuMessage) -> None:
        try:
            self._transport.publish(pubsub_topic, message)
        except PublishFailed as exc:
            if exc.permanent:
                log.warning("refused to publish on %s: %s", message.content_topic, exc.reason)
            else:
                log.info(
                    "no relay peers for %s; the request flow will try again",
                    message.content_topic,
                )
