"""Fetching a community from its link: we relay the link's shard (validating with the link's
protection key), watch the description topic and scan it in the store. The fetch shows
`fetching` until a validly signed description arrives (`found`), or `timed_out` /
`not_found` after `CommunityPolicy.fetch_timeout` with the reason (how many relay peers the
shard has, whether a store node was there to ask).

A link carries bootstrap hints (multiaddrs of the peers its maker had on the shard, then
rendezvous points): a fetch hands them to the node to dial, so a person whose fleet does not
serve the community's shard still reaches it. `link_of` fills them in."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chat import events as ev
from chat.communities.channel import community_content_topic
from chat.communities.description import Description
from chat.communities.link import MAX_BOOTSTRAP, MAX_BOOTSTRAP_ADDRESS, CommunityLink, LinkError
from chat.messenger.communities import CommunityChats, community_view
from chat.messenger.community_wire import AddInbox, TopicInbox, WatchTopic
from chat.messenger.context import MessengerContext
from chat.messenger.node import BootstrapNode, MessengerNode
from chat.waku.message import WakuMessage
from chat.waku.protected import InvalidShardKey, ShardPublicKey
from chat.waku.topics import format_pubsub_topic
from storage.repositories.reliability import SyncCursor
from storage.store import Store

log = logging.getLogger(__name__)

FETCH_LOOKBACK = 24 * 3600.0
"""How far back a fetch scans the store for the description: moderators publish it every
15 min, so a day covers every community with a moderator online in the last day."""


@dataclass
class Fetch:
    link: CommunityLink
    started_at: float
    state: str = "fetching"
    reason: str | None = None


def parse_link(text: str) -> CommunityLink:
    try:
        return CommunityLink.parse(text)
    except LinkError as exc:
        raise ev.InvalidInput(str(exc)) from None


class CommunityFetches:
    def __init__(
        self,
        ctx: MessengerContext,
        node: MessengerNode,
        chats: CommunityChats,
        watch: WatchTopic,
        add_inbox: AddInbox,
        watch_requests: Callable[[str], Awaitable[None]],
    ) -> None:
        self._ctx = ctx
        self._node = node
        self._chats = chats
        self._watch = watch
        self._add_inbox = add_inbox
        self._watch_requests = watch_requests
        self.fetches: dict[str, Fetch] = {}
        self.scan_now: Callable[[str, tuple[str, ...], float], None] | None = None
        """Set by the façade: a store scan of a watched topic now, up to now (a fetch)."""

    def description_inbox(self, community_id: str) -> TopicInbox:
        async def handle(message: WakuMessage) -> None:
            await self._chats.offer_description(
                message.payload, community_id, "the community's topic"
            )

        return TopicInbox(handle)

    async def fetch(self, text: str) -> ev.CommunityFetchView:
        link = parse_link(text)
        community_id = link.community_id
        held = self._chats.communities.book.get(community_id)
        fetch = self.fetches.get(community_id)
        if held is not None:
            fetch = self.fetches[community_id] = Fetch(link, self._ctx.clock(), "found")
            return self.fetch_view(community_id)
        if fetch is None or fetch.state in ("timed_out", "not_found"):
            fetch = self.fetches[community_id] = Fetch(link, self._ctx.clock())
            await self._start_fetch(link)
            self._ctx.wake_scheduler()
        return self.fetch_view(community_id)

    async def _start_fetch(self, link: CommunityLink) -> None:
        topic = format_pubsub_topic(link.cluster_id, link.shard)
        try:
            key = ShardPublicKey.from_bytes(link.protection_key) if link.protection_key else None
        except InvalidShardKey:
            key = None
        if self._chats.communities.get(link.community_id) is None:
            self._node.join_shard(topic, None, key)
        if link.bootstrap and isinstance(self._node, BootstrapNode):
            taken = self._node.add_bootstrap(topic, link.bootstrap)
            log.info("community %s: %d bootstrap peers to dial", link.community_id[:8], taken)
        content_topic = community_content_topic(link.community_id)
        self._add_inbox(content_topic, self.description_inbox(link.community_id))
        now_ms = self._ctx.now_ms()
        since_ms = now_ms - int(FETCH_LOOKBACK * 1000)

        def look_back(store: Store) -> None:
            # A topic never watched is scanned from now on; a fetch needs the copies the
            # store kept from before (moderators publish one every 15 min).
            if store.sync_cursors.load(topic, content_topic) is None:
                store.sync_cursors.save(SyncCursor(topic, content_topic, since_ms, None, now_ms))

        await self._ctx.db.run(look_back)
        await self._watch(topic, content_topic)
        if self.scan_now is not None:
            self.scan_now(topic, (content_topic,), self._ctx.clock())
        await self._watch_requests(link.community_id)

    def link_of(self, description: Description) -> CommunityLink:
        """The community's link, with the peers we have on its shard as bootstrap hints."""
        bootstrap: list[str] = []
        if isinstance(self._node, BootstrapNode):
            topic = format_pubsub_topic(description.cluster_id, description.shard)
            bootstrap = self._node.bootstrap_addresses(topic, MAX_BOOTSTRAP, MAX_BOOTSTRAP_ADDRESS)
        return CommunityLink.of(description, tuple(bootstrap))

    def fetch_view(self, community_id: str) -> ev.CommunityFetchView:
        fetch = self.fetches.get(community_id)
        description = self._chats.communities.book.get(community_id)
        if fetch is None:
            raise ev.NotFound("that community is not being fetched")
        community = self._chats.communities.get(community_id)
        found = None
        if description is not None:
            role = community.role.label if community and community.role else "none"
            found = community_view(
                description, role, community.owner_last_seen if community else None
            )
        return ev.CommunityFetchView(
            community_id, fetch.state, fetch.reason, fetch.started_at, found
        )

    def found(self, community_id: str) -> None:
        fetch = self.fetches.get(community_id)
        if fetch is not None and fetch.state != "found":
            fetch.state, fetch.reason = "found", None

    # ---- time ---------------------------------------------------------------------------------
    def next_wakeup(self) -> float | None:
        times = [
            fetch.started_at + self._chats.policy.fetch_timeout
            for fetch in self.fetches.values()
            if fetch.state == "fetching"
        ]
        return min(times) if times else None

    def run_due(self, now: float) -> None:
        for community_id, fetch in self.fetches.items():
            if (
                fetch.state == "fetching"
                and now >= fetch.started_at + self._chats.policy.fetch_timeout
            ):
                fetch.state, fetch.reason = self._fetch_failed(fetch)
                log.info("community %s: %s: %s", community_id[:8], fetch.state, fetch.reason)

    def _fetch_failed(self, fetch: Fetch) -> tuple[str, str]:
        """`not_found` when the shard had relay peers and a store node was there to ask (the
        community's description is nowhere to be had), else `timed_out` with what was
        missing."""
        topic = format_pubsub_topic(fetch.link.cluster_id, fetch.link.shard)
        peers = self._node.relay_peers().get(topic, 0)
        stores = len(self._node.store_peers())
        waited = f"no signed description arrived in {self._chats.policy.fetch_timeout:.0f} s"
        if peers and stores:
            return "not_found", (
                f"{waited}: {peers} relay peers on its shard and {stores} store nodes had none "
                "(the community may not exist, or its moderators were away for over a day); "
                "fetch again to retry"
            )
        missing = "no relay peer on its shard" if not peers else "no store node reachable"
        return "timed_out", f"{waited} ({missing}, {topic}); fetch again to retry"
