"""Communities on a fake network, on trio's mock clock: a fetch that times out with its
reason, join requests re-sent on their schedule and expiring with a reason while nobody
answers, an admin answering while the owner is away, and the owner answering a re-sent
request when back."""

from __future__ import annotations

from typing import Any

import trio
from harness.communities import NOW, new_community, person
from harness.fake_messengers import Peers, Running

from chat.communities.answers import MemberKeys, sign_answer
from chat.communities.channel import new_content_key, requests_content_topic
from chat.communities.description import Member, sign_description
from chat.communities.join import RequestPolicy
from chat.communities.link import CommunityLink
from chat.communities.roles import Role
from chat.identity import ContactLink
from chat.messenger.config import CommunityPolicy
from chat.proto import community_pb2, direct_pb2

POLICY = CommunityPolicy(
    fetch_timeout=30.0,
    requests=RequestPolicy(lifetime=1000.0, first_resend=60.0, factor=2.0, jitter=0.0),
)


async def start(peers: Peers, name: str) -> Running:
    return await peers.start(name, communities=POLICY)


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


async def request_of(running: Running, community_id: str, direction: str) -> Any:
    found = [
        r
        for r in await running.messenger.community_requests()
        if r.community_id == community_id and r.direction == direction
    ]
    return found[-1] if found else None


async def test_a_fetch_nobody_answers_times_out_or_is_not_found_with_a_reason(
    peers: Peers, autojump_clock: Any
) -> None:
    bob = await start(peers, "bob")
    nowhere = CommunityLink.of(new_community(person("alice")).description).encode()
    fetch = await bob.messenger.fetch_community(nowhere)
    assert (fetch.state, fetch.reason, fetch.community) == ("fetching", None, None)
    await trio.sleep(29)
    assert (await bob.messenger.community_fetch(fetch.community_id)).state == "fetching"
    await trio.sleep(2)
    # Alone on the network: nobody to ask, so it timed out, and says why.
    timed_out = await bob.messenger.community_fetch(fetch.community_id)
    assert timed_out.state == "timed_out"
    assert timed_out.reason is not None
    assert "no signed description arrived in 30 s" in timed_out.reason
    assert "no relay peer on its shard" in timed_out.reason
    # With a peer and a store node that have nothing: not found. Fetching again retries.
    await start(peers, "carol")
    again = await bob.messenger.fetch_community(nowhere)
    assert again.state == "fetching" and again.started_at > fetch.started_at
    await trio.sleep(31)
    not_found = await bob.messenger.community_fetch(fetch.community_id)
    assert not_found.state == "not_found"
    assert not_found.reason is not None and "store nodes had none" in not_found.reason


async def test_owner_away_request_resent_then_expired_admin_answers_owner_answers_again(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, erin, bob = [await start(peers, n) for n in ("alice", "erin", "bob")]
    community = await alice.messenger.create_community("Away", "", "approval", ["general"])
    link, _ = await alice.messenger.community_link(community.id)
    # Erin joins and becomes an admin.
    fetched = await erin.messenger.fetch_community(link)
    await settle()
    assert (await erin.messenger.community_fetch(fetched.community_id)).state == "found"
    await erin.messenger.join_community(link, "")
    await settle()
    pending = await request_of(alice, community.id, "received")
    await alice.messenger.accept_community_request(pending.id)
    await settle()
    await alice.messenger.set_community_role(community.id, erin.messenger.me.chat_key_text, "admin")
    await settle()
    assert (await erin.messenger.community(community.id)).my_role == "admin"

    # Owner and admin away: Bob's request goes again and again, then expires with a reason.
    alice.node.set_online(False)
    erin.node.set_online(False)
    fetch = await bob.messenger.fetch_community(link)
    await trio.sleep(65)  # the store scan of the description topic
    assert (await bob.messenger.community_fetch(fetch.community_id)).state == "found"
    asked = await bob.messenger.join_community(link, "hello?")
    topic = requests_content_topic(community.id)

    def copies() -> int:
        return sum(1 for _, m in bob.node.published if m.content_topic == topic)

    sent_first = copies()
    assert sent_first == 2  # one for the owner, one for the admin
    await trio.sleep(61)
    assert copies() == 2 * sent_first
    await trio.sleep(121)
    assert copies() == 3 * sent_first
    mine = await request_of(bob, community.id, "sent")
    assert mine.state == "pending" and mine.owner_last_seen is not None
    await trio.sleep(1000)
    expired = await request_of(bob, community.id, "sent")
    assert expired.state == "expired"
    assert "no owner or admin answered" in expired.state_reason
    assert "owner was last seen" in expired.state_reason
    del asked

    # The admin comes back first and answers a new request while the owner is away.
    erin.node.set_online(True)
    await bob.messenger.join_community(link, "again")
    await trio.sleep(5)  # erin's store scan of the requests topic brings the old one too
    received = {r.message: r for r in await erin.messenger.community_requests()}
    assert received["hello?"].state == "expired"
    theirs = received["again"]
    assert theirs.state == "pending"
    await erin.messenger.accept_community_request(theirs.id)
    await settle()
    assert (await bob.messenger.community(community.id)).my_role == "member"
    assert (await request_of(bob, community.id, "sent")).state == "accepted"


async def test_the_owner_back_online_gets_a_resent_request_and_answers_it(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, frank = [await start(peers, n) for n in ("alice", "frank")]
    community = await alice.messenger.create_community("Back", "", "approval", ["general"])
    link, _ = await alice.messenger.community_link(community.id)
    fetch = await frank.messenger.fetch_community(link)
    await trio.sleep(65)
    assert (await frank.messenger.community_fetch(fetch.community_id)).state == "found"
    alice.node.set_online(False)
    peers.network.store_keeps = False  # nothing waits in a store: only a re-send reaches her
    await frank.messenger.join_community(link, "knock knock")
    await trio.sleep(30)
    alice.node.set_online(True)
    assert await request_of(alice, community.id, "received") is None
    await trio.sleep(31)  # the first re-send, 60 s after the first copy
    theirs = await request_of(alice, community.id, "received")
    assert theirs is not None and theirs.state == "pending" and theirs.message == "knock knock"
    await alice.messenger.accept_community_request(theirs.id)
    await settle()
    assert (await frank.messenger.community(community.id)).my_role == "member"
    mine = await request_of(frank, community.id, "sent")
    assert mine.state == "accepted" and mine.sends >= 2


async def test_a_member_who_leaves_is_removed_by_the_owner_and_the_epoch_moves(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, bob, carol = [await start(peers, n) for n in ("alice", "bob", "carol")]
    community = await alice.messenger.create_community("Open", "", "open", ["general"])
    link, _ = await alice.messenger.community_link(community.id)
    for member in (bob, carol):
        await member.messenger.fetch_community(link)
        await trio.sleep(5)
        await member.messenger.join_community(link, "")
        await settle()
        assert (await member.messenger.community(community.id)).my_role == "member"
    before = await alice.messenger.community(community.id)
    left = await bob.messenger.leave_community(community.id)
    assert left.my_role == "none" and await bob.messenger.communities() == []
    await settle()
    after = await alice.messenger.community(community.id)
    assert bob.messenger.me.chat_key_text not in {m.chat_key for m in after.members}
    assert after.epoch == before.epoch + 1
    await settle()
    assert (await carol.messenger.community(community.id)).epoch == after.epoch


async def test_a_member_restarted_still_holds_the_community_and_writes_in_it(
    peers: Peers, autojump_clock: Any
) -> None:
    alice, bob = [await start(peers, n) for n in ("alice", "bob")]
    community = await alice.messenger.create_community("Kept", "", "open", ["general"])
    link, _ = await alice.messenger.community_link(community.id)
    await bob.messenger.fetch_community(link)
    await trio.sleep(5)
    await bob.messenger.join_community(link, "")
    await settle()
    await peers.stop("bob")
    bob = await start(peers, "bob")
    view = await bob.messenger.community(community.id)
    assert view.my_role == "member" and view.epoch == community.epoch
    assert [r.state for r in await bob.messenger.community_requests()] == ["accepted"]
    channel = community.channels[0].id
    assert any(c.id == channel and c.kind == "channel" for c in await bob.messenger.chats())
    await bob.messenger.send_text(channel, "back again")
    await trio.sleep(5)
    texts = [m.text for m in await alice.messenger.messages(channel)]
    assert texts == ["back again"]


async def test_member_keys_with_a_description_the_owner_never_signed_are_refused(
    peers: Peers, autojump_clock: Any
) -> None:
    # Bob opens a link whose description has not arrived yet. Mallory, who is nobody in the
    # community, sends him member keys carrying a description she signed herself naming
    # herself admin and him a member: it verifies (her signature) but the owner key never
    # signed it, so Bob must not join anything nor keep that description.
    bob, mallory = [await start(peers, n) for n in ("bob", "mallory")]
    real = new_community(person("alice"))
    link = CommunityLink.of(real.description).encode()
    fetch = await bob.messenger.fetch_community(link)
    assert fetch.state == "fetching"
    me = mallory.messenger.me
    forged_members = (
        *real.description.members,
        Member(me.chat_key_text, me.display_name, Role.ADMIN, me.contact_link()),
        Member(bob.messenger.me.chat_key_text, "bob", Role.MEMBER),
    )
    forged = sign_description(me, real.description.next(NOW, members=forged_members))
    keys = MemberKeys(real.description.id, forged.epoch, new_content_key(), b"", forged.signed)
    joins = mallory.messenger._community_joins
    bob_link = ContactLink.parse(bob.messenger.me.contact_link())
    envelope = joins._olm.seal_to(bob_link, direct_pb2.DirectPayload(community_keys=keys.encode()))
    joins._publish(
        real.description.id,
        community_pb2.RequestsMessage(
            recipient_identity_key=bob_link.identity_key, envelope=envelope.encode()
        ).SerializeToString(),
    )
    await settle()
    assert await bob.messenger.communities() == []
    assert (await bob.messenger.community_fetch(fetch.community_id)).state == "fetching"
    assert any("member keys" in reason for reason in bob.rejections())


async def test_a_request_waiting_for_its_description_is_not_due_again_at_once(
    peers: Peers, autojump_clock: Any
) -> None:
    # Bob asks to join before the description is found: the request goes when it arrives.
    # Until then a pass of the scheduler must leave it due later, not now (due now, the
    # scheduler ran it again at once, forever, holding the messenger's lock).
    bob = await start(peers, "bob")
    link = CommunityLink.of(new_community(person("alice")).description).encode()
    asked = await bob.messenger.join_community(link, "hello")
    assert asked.state == "pending" and asked.sends == 0
    joins = bob.messenger._community_joins
    now = bob.messenger._ctx.clock()
    async with bob.messenger._lock:
        await joins.run_due(now)
    wakeup = joins.next_wakeup()
    assert wakeup is not None and wakeup > now
    assert (await request_of(bob, asked.community_id, "sent")).sends == 0


async def test_a_kick_by_an_admin_who_never_had_a_members_link_still_gets_them_the_new_key(
    peers: Peers, autojump_clock: Any
) -> None:
    # Bob and Carol joined before Erin became admin: their requests went to Alice only, so
    # Erin knows no link of theirs. Erin kicks Carol: Bob must still read what follows.
    alice, bob, carol, erin = [await start(peers, n) for n in ("alice", "bob", "carol", "erin")]
    community = await alice.messenger.create_community("Kicks", "", "open", ["general"])
    link, _ = await alice.messenger.community_link(community.id)
    for member in (bob, carol, erin):
        await member.messenger.fetch_community(link)
        await trio.sleep(5)
        await member.messenger.join_community(link, "")
        await settle()
        assert (await member.messenger.community(community.id)).my_role == "member"
    await alice.messenger.set_community_role(community.id, erin.messenger.me.chat_key_text, "admin")
    await settle()
    kicked = await erin.messenger.kick_community_member(
        community.id, carol.messenger.me.chat_key_text
    )
    await trio.sleep(120)
    channel = community.channels[0].id
    await alice.messenger.send_text(channel, "after the kick")
    await trio.sleep(120)
    assert (await bob.messenger.community(community.id)).epoch == kicked.epoch
    assert [m.text for m in await bob.messenger.messages(channel)] == ["after the kick"]


async def test_an_answer_on_another_communitys_topic_does_not_close_a_request(
    peers: Peers, autojump_clock: Any
) -> None:
    # Bob asks to join Alice's community, and owns one of his own that Alice follows. An
    # answer Bob signs for his own community naming his request to Alice's is valid there,
    # but it must not close Alice's copy of the request (only her community's moderators can).
    alice, bob = [await start(peers, n) for n in ("alice", "bob")]
    theirs = await alice.messenger.create_community("Alice's", "", "approval", ["general"])
    his = await bob.messenger.create_community("Bob's", "", "approval", ["general"])
    for follower, owner, community in ((alice, bob, his), (bob, alice, theirs)):
        link, _ = await owner.messenger.community_link(community.id)
        await follower.messenger.fetch_community(link)
        await trio.sleep(5)
    await bob.messenger.join_community(
        (await alice.messenger.community_link(theirs.id))[0], "let me in"
    )
    await settle()
    pending = await request_of(alice, theirs.id, "received")
    assert pending is not None and pending.state == "pending"
    owner_key = bob.messenger._communities.communities.get(his.id).owner_key  # type: ignore[union-attr]
    answer = sign_answer(
        owner_key, pending.id, his.id, bob.messenger.me.chat_key_text,
        accepted=False, reason="closed by someone else", now=NOW,
    )  # fmt: skip
    bob.messenger._community_joins._publish(
        his.id, community_pb2.RequestsMessage(answer=answer.signed).SerializeToString()
    )
    await trio.sleep(5)
    assert (await request_of(alice, theirs.id, "received")).state == "pending"


async def test_a_pending_request_keeps_its_schedule_and_gets_its_answer_after_a_restart(
    peers: Peers, autojump_clock: Any
) -> None:
    # Frank asks while the owner is away and nothing waits in a store, then restarts and
    # never opens the link again: the request must still go on its schedule (the description
    # it goes by kept with it), reach the owner when she is back, and be answered.
    alice, frank = [await start(peers, n) for n in ("alice", "frank")]
    community = await alice.messenger.create_community("Later", "", "approval", ["general"])
    link, _ = await alice.messenger.community_link(community.id)
    await frank.messenger.fetch_community(link)
    await trio.sleep(65)
    alice.node.set_online(False)
    peers.network.store_keeps = False
    asked = await frank.messenger.join_community(link, "still here")
    assert asked.sends == 1
    await peers.stop("frank")
    frank = await start(peers, "frank")
    kept = await request_of(frank, community.id, "sent")
    assert (kept.state, kept.sends, kept.expires_at) == ("pending", 1, asked.expires_at)
    alice.node.set_online(True)
    await trio.sleep(61)  # the first re-send, 60 s after the first copy
    theirs = await request_of(alice, community.id, "received")
    assert theirs is not None and theirs.message == "still here"
    await alice.messenger.accept_community_request(theirs.id)
    await settle()
    assert (await frank.messenger.community(community.id)).my_role == "member"
    assert (await request_of(frank, community.id, "sent")).state == "accepted"


async def test_a_request_sent_before_its_description_was_found_fetches_again_after_a_restart(
    peers: Peers, autojump_clock: Any
) -> None:
    # Frank asks at once (the description not found yet) and restarts: the fetch resumes
    # from the kept link, the request goes when the description arrives, and it expires
    # when its lifetime is up, not later.
    alice, frank = [await start(peers, n) for n in ("alice", "frank")]
    community = await alice.messenger.create_community("Soon", "", "approval", ["general"])
    link, _ = await alice.messenger.community_link(community.id)
    alice.node.set_online(False)
    asked = await frank.messenger.join_community(link, "first")
    assert asked.sends == 0
    await peers.stop("frank")
    frank = await start(peers, "frank")
    alice.node.set_online(True)
    await trio.sleep(125)  # the owner's description again, or the store scan of it
    mine = await request_of(frank, community.id, "sent")
    assert mine.sends >= 1
    theirs = await request_of(alice, community.id, "received")
    assert theirs is not None and theirs.message == "first"
    await trio.sleep(1000)
    assert (await request_of(frank, community.id, "sent")).state == "expired"


async def test_owner_and_admin_kicking_at_once_leave_every_member_with_one_description_and_key(
    peers: Peers, autojump_clock: Any
) -> None:
    # Alice (owner) kicks Carol while Erin (admin) kicks Dave, both from the same version:
    # two versions with the same number and two content keys for the same epoch. Everyone
    # must end with the same description (the owner's wins the tie, then Erin makes her
    # kick again on top of it) and the same key, which Dave does not hold.
    names = ("alice", "bob", "carol", "dave", "erin")
    alice, bob, carol, dave, erin = [await start(peers, n) for n in names]
    community = await alice.messenger.create_community("Race", "", "open", ["general"])
    link, _ = await alice.messenger.community_link(community.id)
    for member in (bob, carol, dave, erin):
        await member.messenger.fetch_community(link)
        await trio.sleep(5)
        await member.messenger.join_community(link, "")
        await settle()
    await alice.messenger.set_community_role(community.id, erin.messenger.me.chat_key_text, "admin")
    await settle()
    ready = await alice.messenger.community(community.id)
    erin.node.set_online(False)  # neither sees the other's version before signing hers
    await alice.messenger.kick_community_member(community.id, carol.messenger.me.chat_key_text)
    await erin.messenger.kick_community_member(community.id, dave.messenger.me.chat_key_text)
    await settle()
    erin.node.set_online(True)
    await trio.sleep(120)

    def held(running: Running) -> Any:
        return running.messenger._communities.communities.get(community.id)

    ends = {name: held(r) for name, r in (("alice", alice), ("bob", bob), ("erin", erin))}
    descriptions = {name: c.description for name, c in ends.items()}
    assert len(set(descriptions.values())) == 1, descriptions
    kept = descriptions["bob"]
    gone = {carol.messenger.me.chat_key_text, dave.messenger.me.chat_key_text}
    assert not gone & {m.chat_key for m in kept.members}
    assert kept.version == ready.version + 2  # the owner's kick, then Erin's again
    keys = {name: c.keys.current for name, c in ends.items()}
    assert len(set(keys.values())) == 1, keys
    dave_holds = held(dave)
    assert dave_holds is None or dave_holds.keys.get(kept.epoch) is None
    channel = community.channels[0].id
    await erin.messenger.send_text(channel, "after both kicks")
    await trio.sleep(60)
    assert "after both kicks" in [m.text for m in await bob.messenger.messages(channel)]
