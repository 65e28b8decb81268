"""Contact-request spam on a fake network (issue 13 item 4): strangers' requests are rate
limited and capped, every drop is counted and reported, contacts' messages are never held
up behind them, and a genuine request that was dropped gets in with its sender's re-send."""

from __future__ import annotations

from typing import Any

import trio
from harness.fake_messengers import CONFIG, Peers, Running, befriend, texts
from harness.spam import crafted_requests, on_partition
from harness.waiting import wait_until

from chat import events as ev
from chat.direct import MAX_UNVERIFIED_SENDERS
from chat.request_budget import StrangerPolicy

NS = 1_000_000_000


def flood(bob: Running, payloads: list[bytes]) -> None:
    """Hand Bob's node these requests at once, as relay would bring them."""
    link = bob.messenger.identity().contact_link
    topic = bob.node.pubsub_topic(0)
    now_ns = int(CONFIG.clock() * NS)
    for payload in payloads:
        bob.node.deliver(topic, on_partition(link, payload, now_ns))


async def test_contact_messages_all_arrive_in_order_while_strangers_flood_us(
    peers: Peers, autojump_clock: Any
) -> None:
    """1,000 requests from fresh identities in 10 s, a message from a contact every 0.25 s:
    every message is shown, in order; the requests kept never exceed the cap, and the drop
    count is exactly what was not kept."""
    policy = StrangerPolicy(rate=2.0, burst=10, max_held=15, queue=64, report_every=5.0)
    alice = await peers.start("alice")
    bob = await peers.start("bob", strangers=policy)
    chat_id = await befriend(alice, bob)
    alice_key = alice.messenger.identity().chat_key
    spam = crafted_requests(bob.messenger.identity().contact_link, 1000)
    bob.drain()
    sent = []
    for step in range(40):
        flood(bob, spam[step * 25 : (step + 1) * 25])
        text = f"message {step:02d}"
        await alice.messenger.send_text(chat_id, text)
        sent.append(text)
        await trio.sleep(0.25)
        health = bob.messenger.health()
        assert health.stranger_requests_held <= policy.max_held
    await wait_until(lambda: _all_arrived(bob, chat_id, len(sent)))
    assert await texts(bob, chat_id) == sent
    await trio.sleep(policy.report_every)  # the last report is due
    health = bob.messenger.health()
    strangers = [c for c in await bob.messenger.contacts() if c.chat_key != alice_key]
    assert health.stranger_requests_held == len(strangers) == policy.max_held
    assert {c.state for c in strangers} == {"request_received"}
    assert health.stranger_requests_dropped == len(spam) - len(strangers)
    reports = [e for e in bob.drain() if isinstance(e, ev.StrangerRequestsDropped)]
    assert reports[-1] == ev.StrangerRequestsDropped(
        dropped=health.stranger_requests_dropped, held=policy.max_held
    )
    # Reported at most every report_every seconds, not per drop.
    assert len(reports) <= 10 / policy.report_every + 2


async def _all_arrived(bob: Running, chat_id: str, count: int) -> bool:
    return len(await texts(bob, chat_id)) == count


async def test_a_contacts_message_is_handled_before_the_strangers_backlog(
    peers: Peers, autojump_clock: Any
) -> None:
    roomy = StrangerPolicy(rate=1000.0, burst=1000, max_held=1000, queue=1000)
    alice = await peers.start("alice")
    bob = await peers.start("bob", strangers=roomy)
    chat_id = await befriend(alice, bob)
    spam = crafted_requests(bob.messenger.identity().contact_link, 200)
    bob.drain()
    flood(bob, spam)
    await alice.messenger.send_text(chat_id, "are you there?")
    await wait_until(lambda: _all_arrived(bob, chat_id, 1))
    await wait_until(lambda: _requests_received(bob, 201))
    events = bob.drain()
    shown = next(i for i, e in enumerate(events) if isinstance(e, ev.MessageAdded))
    requests_before = sum(1 for e in events[:shown] if isinstance(e, ev.ContactUpdated))
    # All 200 requests were in the node's queue before the message arrived; only the few
    # handled while Alice's client was still sending it came first.
    assert requests_before <= 10, requests_before


async def _requests_received(bob: Running, count: int) -> bool:
    return len(await bob.messenger.contacts()) == count


async def test_a_genuine_request_dropped_to_make_room_gets_in_with_its_resend(
    peers: Peers, autojump_clock: Any
) -> None:
    small = StrangerPolicy(rate=100.0, burst=100, max_held=2)
    bob = await peers.start("bob", strangers=small)
    carol = await peers.start("carol")
    bob_link = bob.messenger.identity().contact_link
    carol_key = carol.messenger.identity().chat_key
    asked = await carol.messenger.add_contact(bob_link, "it's Carol, from the choir")
    await trio.testing.wait_all_tasks_blocked()
    assert [c.chat_key for c in await bob.messenger.contacts()] == [carol_key]
    flood(bob, crafted_requests(bob_link, 2))
    await trio.testing.wait_all_tasks_blocked()
    # Carol's was the oldest: dropped, and forgotten (flow and sessions) in the profile too.
    assert carol_key not in {c.chat_key for c in await bob.messenger.contacts()}
    assert bob.store.contact_flows.get(carol_key) is None
    assert carol.messenger.me.identity_key.hex() not in bob.store.olm_sessions.load()
    assert bob.messenger.health().stranger_requests_dropped == 1
    # Her client sends it again on its schedule, and this time it is kept.
    assert asked.next_send_at is not None
    await trio.sleep(asked.next_send_at - CONFIG.clock() + 1)
    request = next(c for c in await bob.messenger.contacts() if c.chat_key == carol_key)
    assert (request.state, request.intro) == ("request_received", "it's Carol, from the choir")
    accepted = await bob.messenger.accept_contact(carol_key)
    await trio.testing.wait_all_tasks_blocked()
    assert [c.state for c in await carol.messenger.contacts()] == ["mutual"]
    assert accepted.chat_id is not None
    await carol.messenger.send_text(accepted.chat_id, "thanks!")
    await wait_until(lambda: _all_arrived(bob, accepted.chat_id or "", 1))


async def test_the_drop_count_survives_a_restart_and_a_flooded_profile_is_trimmed(
    peers: Peers, autojump_clock: Any
) -> None:
    roomy = StrangerPolicy(rate=100.0, burst=100, max_held=50)
    bob = await peers.start("bob", strangers=roomy)
    flood(bob, crafted_requests(bob.messenger.identity().contact_link, 30))
    await wait_until(lambda: _requests_received(bob, 30))
    await trio.sleep(1.5)  # the receive-side state is saved
    await peers.stop("bob")
    # Started with a smaller cap (as a profile flooded before spam protection would be).
    bob = await peers.start("bob", strangers=StrangerPolicy(max_held=10))
    assert len(await bob.messenger.contacts()) == 10
    assert bob.messenger.health().stranger_requests_dropped == 20
    assert len(bob.store.contact_flows.all()) == 10
    assert len(bob.store.olm_sessions.load()) == 10
    await trio.sleep(0.1)
    assert ev.StrangerRequestsDropped(dropped=20, held=10) in bob.drain()
    await peers.stop("bob")
    bob = await peers.start("bob")
    assert bob.messenger.health().stranger_requests_dropped == 20


async def test_taking_in_one_more_request_writes_one_session_row_whatever_the_backlog(
    peers: Peers, autojump_clock: Any
) -> None:
    roomy = StrangerPolicy(rate=1000.0, burst=1000, max_held=1000)
    bob = await peers.start("bob", strangers=roomy)
    link = bob.messenger.identity().contact_link
    flood(bob, crafted_requests(link, 150))
    await wait_until(lambda: _requests_received(bob, 150))
    await trio.sleep(2)  # everything saved
    before = _session_rows(bob)
    await trio.sleep(10)
    flood(bob, crafted_requests(link, 1))
    await wait_until(lambda: _requests_received(bob, 151))
    await trio.sleep(2)
    after = _session_rows(bob)
    changed = {key for key, at in after.items() if before.get(key) != at}
    assert len(after) == 151 and len(changed) == 1


def _session_rows(running: Running) -> dict[str, int]:
    rows = running.store.db.fetchall("SELECT identity_key, updated_at FROM olm_peer_sessions")
    return {str(key): int(at) for key, at in rows}


async def test_requests_refused_for_their_request_id_are_not_kept_beyond_the_bound(
    peers: Peers, autojump_clock: Any
) -> None:
    """A stranger's request that Olm opened but the flow refuses (its request id is not one
    we accept) must not make its sender trusted: each fresh identity would otherwise add an
    Olm session to the profile that no cap ever drops. It stays among the unverified
    senders, of whom only the newest MAX_UNVERIFIED_SENDERS are kept."""
    roomy = StrangerPolicy(rate=1000.0, burst=1000, max_held=5)
    bob = await peers.start("bob", strangers=roomy)
    link = bob.messenger.identity().contact_link
    for bad_id in ("", "not a request id!", "x" * 65):
        flood(bob, crafted_requests(link, MAX_UNVERIFIED_SENDERS, request_id=bad_id))
    await trio.testing.wait_all_tasks_blocked()
    await trio.sleep(2)  # the receive-side state is saved
    assert await bob.messenger.contacts() == []
    sessions = bob.messenger.sessions
    assert sessions is not None and len(sessions.sessions) <= MAX_UNVERIFIED_SENDERS
    with_sessions = [row for row in bob.store.olm_sessions.load().values() if row["sessions"]]
    assert len(with_sessions) <= MAX_UNVERIFIED_SENDERS
