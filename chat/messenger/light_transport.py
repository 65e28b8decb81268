"""The profile's transport in light mode: light push to service nodes.

A message of the outbox waits for the push's answer (`publish_confirmed`): `sent` means a
service node answered the push with success, naming the relay peers it reached. Messages
whose own flow sends them again (requests, syncs, invitations) go through `publish`, which
queues them for the node's push worker and returns at once.
"""

from __future__ import annotations

from typing import Any

from chat.light_node import LightClientNode, light_report_evidence
from chat.messenger.conversation import PublishFailed
from chat.waku.lightpush.client_core import Verdict, verdict
from chat.waku.message import WakuMessage
from chat.waku.relay.core import NoPeersReached


class LightTransport:
    def __init__(self, node: LightClientNode) -> None:
        self._node = node

    def publish(self, pubsub_topic: str, message: WakuMessage) -> dict[str, Any]:
        try:
            held = self._node.publish(pubsub_topic, message)
        except NoPeersReached:
            raise PublishFailed("no light push node", permanent=False) from None
        return {"light_push_queued": held}

    async def publish_confirmed(self, pubsub_topic: str, message: WakuMessage) -> dict[str, Any]:
        if not self._node.push.pool.active:
            raise PublishFailed("no light push node", permanent=False)
        report = await self._node.push_now(pubsub_topic, message)
        if report.succeeded:
            return light_report_evidence(report)
        verdicts = {verdict(a.status_code) for a in report.attempts}
        last = report.attempts[-1] if report.attempts else None
        reason = f"light push failed: {last.status_code} {last.description}" if last else ""
        if verdicts and verdicts <= {Verdict.GIVE_UP}:
            raise PublishFailed(reason or "light push refused", permanent=True)
        raise PublishFailed(reason or "no light push node answered", permanent=False)

    def reachable(self, pubsub_topic: str) -> bool:
        return self._node.core.push_held() > 0
