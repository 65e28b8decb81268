"""Communities on real nodes over loopback: a service node (relay + store) serving the
community's protected shard, messengers with real SQLCipher profiles. Every wait is a
condition (wait_until); nothing sleeps for time to pass."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import pytest
from harness.fast import FAST
from harness.live_communities import (
    channel_texts,
    fetched,
    received_requests,
    request_state,
    role_in,
    serve_shard,
)
from harness.waiting import wait_until

from chat.commands.node import follow, followers_from
from chat.communities.answers import sign_answer
from chat.communities.channel import (
    channel_content_topic,
    community_content_topic,
    requests_content_topic,
)
from chat.communities.description import MAX_DESCRIPTION_BYTES
from chat.events import NotPossible
from chat.messenger.conversation import waku_message
from chat.proto import community_pb2

pytestmark = pytest.mark.slow

CLUSTER = FAST.cluster_id

EACH = 5


async def test_approval_community_two_accepted_one_declined_two_channels_everyone_has_all(
    net: Any,
) -> None:
    service = await net.start_service()
    alice, bob, carol, dave = [await net.start(n) for n in ("alice", "bob", "carol", "dave")]
    community = await alice.create_community(
        "Birders", "We watch birds", "approval", ["general", "sightings"]
    )
    assert community.my_role == "owner" and community.protection_key
    serve_shard(service, community)
    link, qr = await alice.community_link(community.id)
    assert link.startswith("chinwag-community:") and "█" in qr

    for person in (bob, carol, dave):
        found = await fetched(person, link)
        assert found.community is not None and found.community.name == "Birders"
        await person.join_community(link, "let me in")
    requests = await received_requests(alice, community.id, 3)
    by_key = {r.chat_key: r for r in requests}
    await alice.accept_community_request(by_key[bob.me.chat_key_text].id)
    await alice.accept_community_request(by_key[carol.me.chat_key_text].id)
    await alice.decline_community_request(by_key[dave.me.chat_key_text].id)

    async def settled() -> bool:
        return (
            await role_in(bob, community.id) == "member"
            and await role_in(carol, community.id) == "member"
            and await request_state(dave, community.id) == "declined"
            and await request_state(bob, community.id) == "accepted"
        )

    await wait_until(settled, 60)
    assert await role_in(dave, community.id) == "none"
    view = await alice.community(community.id)
    assert {m.role for m in view.members} == {"owner", "member"} and len(view.members) == 3

    members = {"alice": alice, "bob": bob, "carol": carol}
    channels = [c.id for c in view.channels]
    for i in range(EACH):
        for channel in channels:
            for name, member in members.items():
                await member.send_text(channel, f"{name} {channel[:4]} {i}")

    async def everyone_has_all() -> bool:
        for member in members.values():
            for channel in channels:
                if len(await channel_texts(member, channel)) < len(members) * EACH:
                    return False
        return True

    await wait_until(everyone_has_all, 120)
    for member in members.values():
        for channel in channels:
            found = await channel_texts(member, channel)
            assert len(found) == len(set(found)) == len(members) * EACH  # each once
            for name in members:
                mine = [t for t in found if t.startswith(f"{name} ")]
                assert mine == [f"{name} {channel[:4]} {i}" for i in range(EACH)]
    assert not [c for c in await dave.chats() if c.kind == "channel"]
    # Everything went over the protected shard, signed: the service node relayed it and
    # refused nothing there.
    validator = service.relay.validator
    assert validator.is_protected(community.shard)
    assert not [key for key in validator.protected_rejected if key[0] == community.shard]


async def join_open(owner: Any, person: Any, link: str, community_id: str) -> None:
    await fetched(person, link)
    await person.join_community(link, "")

    async def member() -> bool:
        return await role_in(person, community_id) == "member"

    await wait_until(member, 60)


async def test_kicked_and_banned_read_nothing_new_and_the_banned_cannot_publish(net: Any) -> None:
    service = await net.start_service()
    alice, bob, carol, erin = [await net.start(n) for n in ("alice", "bob", "carol", "erin")]
    community = await alice.create_community("Open", "", "open", ["general"])
    link, _ = await alice.community_link(community.id)
    # The service node follows the community as `chinwag node --community LINK` does.
    (follower,) = followers_from(argparse.Namespace(community=[link]), CLUSTER)
    service.relay.protect(follower.pubsub_topic, follower.key)
    follow(service.relay, [follower])
    for person in (bob, carol, erin):
        await join_open(alice, person, link, community.id)
    channel = community.channels[0].id
    await alice.send_text(channel, "before")

    async def all_have_before() -> bool:
        return all(["before" in await channel_texts(p, channel) for p in (bob, carol, erin)])

    await wait_until(all_have_before, 60)
    old_pair = carol._communities.community(community.id).protection
    assert old_pair is not None
    kicked = await alice.kick_community_member(community.id, bob.me.chat_key_text)
    assert kicked.epoch == community.epoch + 1
    banned = await alice.ban_community_member(community.id, carol.me.chat_key_text)
    assert banned.epoch == kicked.epoch + 1
    assert banned.protection_key != community.protection_key
    assert {m.chat_key for m in banned.members} == {alice.me.chat_key_text, erin.me.chat_key_text}

    async def service_follows() -> bool:
        key = service.relay.validator.protection_key(community.shard)
        return key is not None and key.to_hex() == banned.protection_key

    await wait_until(service_follows, 60)  # by itself: no operator
    assert follower.rotations == 1

    async def erin_follows() -> bool:
        view = await erin.community(community.id)
        return view.epoch == banned.epoch and view.protection_key == banned.protection_key

    await wait_until(erin_follows, 60)
    await alice.send_text(channel, "after")

    async def erin_has_after() -> bool:
        return "after" in await channel_texts(erin, channel)

    await wait_until(erin_has_after, 60)
    rejected_before = sum(service.relay.validator.protected_rejected.values())
    # Carol learned she is banned (the new description went out under the old key first):
    # chinwag will not send for her, her own relay will not publish with the old key, and
    # what she forces onto the shard with it is refused by the shard's relays.
    with pytest.raises(NotPossible, match="not a member"):
        await carol.send_text(channel, "carol still here")
    forced = waku_message(channel_content_topic(channel), b"carol still here", time.time())
    with pytest.raises(ValueError, match="refused before publishing"):
        carol.node.publish(community.shard, forced)
    carol.node.relay.driver.publish(
        community.shard, old_pair.sign(community.shard, forced).encode()
    )

    async def carol_refused_by_the_shard() -> bool:
        return sum(service.relay.validator.protected_rejected.values()) > rejected_before

    await wait_until(carol_refused_by_the_shard, 60)
    await erin.send_text(channel, "erin after")

    async def alice_has_erin() -> bool:
        return "erin after" in await channel_texts(alice, channel)

    await wait_until(alice_has_erin, 60)
    for outsider in (bob, carol):
        found = await channel_texts(outsider, channel)
        assert "after" not in found and "erin after" not in found
    for member in (alice, erin):
        assert "carol still here" not in await channel_texts(member, channel)


async def test_forged_older_oversized_descriptions_and_a_members_answers_are_ignored(
    net: Any, caplog: pytest.LogCaptureFixture
) -> None:
    service = await net.start_service()
    alice, bob, erin, dave = [await net.start(n) for n in ("alice", "bob", "erin", "dave")]
    community = await alice.create_community("Guarded", "", "approval", ["general"])
    serve_shard(service, community)
    link, _ = await alice.community_link(community.id)
    first_signed = alice._communities.community(community.id).description.signed
    for person in (bob, erin):
        await fetched(person, link)
        await person.join_community(link, "")
        (pending,) = await received_requests(alice, community.id, 1)
        await alice.accept_community_request(pending.id)

        async def member(person: Any = person) -> bool:
            return await role_in(person, community.id) == "member"

        await wait_until(member, 60)
    await fetched(dave, link)
    await dave.join_community(link, "")
    (dave_request,) = await received_requests(alice, community.id, 1)
    held = await erin.community(community.id)
    topic = community_content_topic(community.id)

    # Bob is a member: his node holds the shard key, so what he publishes reaches everyone.
    outer = community_pb2.Signed.FromString(held_signed(bob, community.id))
    body = community_pb2.Description.FromString(outer.body)
    body.name, body.version = "Taken over", body.version + 1
    outer.body = body.SerializeToString()
    forged = outer.SerializeToString()
    oversized = b"\x0a" + b"\xff" * (MAX_DESCRIPTION_BYTES + 10)
    rejected_before = erin.rejected
    with caplog.at_level(logging.INFO):
        for payload in (forged, first_signed, oversized):
            bob.node.publish(held.shard, waku_message(topic, payload, time.time()))
        # A member (not an admin) answers Dave's request: neither Dave nor Alice may take it.
        for accepted in (True, False):
            answer = sign_answer(
                bob.me, dave_request.id, community.id, dave.me.chat_key_text,
                accepted=accepted, reason="", now=time.time(),
            )  # fmt: skip
            message = community_pb2.RequestsMessage(answer=answer.signed).SerializeToString()
            bob.node.publish(
                bob.pubsub_topic,
                waku_message(requests_content_topic(community.id), message, time.time()),
            )

        async def all_refused() -> bool:
            # forged and oversized are refused; the older one is logged and ignored
            refused = erin.rejected >= rejected_before + 2 and alice.rejected >= 2
            return refused and "older description" in caplog.text

        await wait_until(all_refused, 60)
    assert "bad signature" in caplog.text and "older description" in caplog.text
    assert "not signed by the owner or an admin" in caplog.text
    assert "bytes (at most" in caplog.text
    now = await erin.community(community.id)
    assert (now.name, now.version) == ("Guarded", held.version)
    assert await request_state(dave, community.id) == "pending"
    (still,) = await received_requests(alice, community.id, 1)
    assert still.id == dave_request.id


def held_signed(messenger: Any, community_id: str) -> bytes:
    """The signed description a messenger holds now."""
    signed: bytes = messenger._communities.community(community_id).description.signed
    return signed
