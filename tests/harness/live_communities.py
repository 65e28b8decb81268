"""Helpers for community scenarios on real nodes (tests/integration/messenger/conftest.py's
`net`): the service node serving the community's shard as `--protected-shard` makes it
serve, fetching and joining by link, and reading what each member holds."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from multiaddr import Multiaddr

from chat import events as ev
from chat.communities.link import CommunityLink
from chat.messenger import Messenger
from chat.waku.node import NodeConfig, NodeService
from chat.waku.protected import ShardPublicKey
from chat.waku.service_node import ServiceNode, ServiceNodeConfig, StoreOptions
from harness.fast import LOOPBACK as FAST_LISTEN
from harness.waiting import wait_until


def serve_shard(service: ServiceNode, community: ev.CommunityView) -> None:
    """The service node relays, keeps and protects the community's shard (as an operator's
    `chinwag node --protected-shard SHARD:PUBKEY` would)."""
    service.relay.protect(community.shard, ShardPublicKey.from_hex(community.protection_key))


async def fetched(messenger: Messenger, link: str, within: float = 60) -> ev.CommunityFetchView:
    view = await messenger.fetch_community(link)

    async def found() -> bool:
        nonlocal view
        view = await messenger.community_fetch(view.community_id)
        return view.state == "found"

    await wait_until(found, within)
    return view


async def received_requests(
    messenger: Messenger, community_id: str, count: int, within: float = 60
) -> list[ev.CommunityRequestView]:
    """Once `count` pending requests to the community reached this moderator."""

    async def pending() -> list[ev.CommunityRequestView]:
        return [
            r
            for r in await messenger.community_requests()
            if r.direction == "received" and r.community_id == community_id
            and r.state == "pending"
        ]  # fmt: skip

    async def arrived() -> bool:
        return len(await pending()) >= count

    await wait_until(arrived, within)
    return await pending()


async def role_in(messenger: Messenger, community_id: str) -> str:
    for community in await messenger.communities():
        if community.id == community_id:
            return community.my_role
    return "none"


async def request_state(messenger: Messenger, community_id: str) -> str:
    for request in await messenger.community_requests():
        if request.direction == "sent" and request.community_id == community_id:
            return request.state
    return "none"


async def channel_texts(messenger: Messenger, chat_id: str) -> list[str]:
    """Every text message in the channel, ours included, oldest first."""
    return [m.text for m in await messenger.messages(chat_id, limit=500) if m.kind == "text"]


async def start_other_service(
    net: Any, name: str, *, services: tuple[NodeService, ...] = ()
) -> ServiceNode:
    """Another service node (relay + store on the default shards) beside `net.service`,
    connected to nothing; `services` are mounted on it first (a rendezvous point or
    client). Stopped with the test (or `net.stop(name)`)."""
    service = ServiceNode(
        ServiceNodeConfig(
            node=NodeConfig(listen_addrs=[Multiaddr(FAST_LISTEN)]),
            store=StoreOptions(net.tmp / name / "archive.sqlite"),
        )
    )
    for extra in services:
        await service.node.mount(extra)
    net.scopes[name] = await net.nursery.start(net._run_service, service)
    return service


def address_of(service: ServiceNode) -> str:
    return str(service.node.full_multiaddrs()[0])


def without_bootstrap(link: str) -> str:
    """The same link with its bootstrap hints taken out (only rendezvous is left)."""
    return replace(CommunityLink.parse(link), bootstrap=()).encode()


def bootstrap_of(link: str) -> tuple[str, ...]:
    return CommunityLink.parse(link).bootstrap
