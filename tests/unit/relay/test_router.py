from __future__ import annotations

import random
from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.waku.framing import FrameDecoder
from chat.waku.message import MessageTooLarge
from chat.waku.proto import rpc_pb2
from chat.waku.relay.core import (
    Deliver,
    Disconnect,
    DuplicateMessage,
    NoPeersReached,
    Router,
    Send,
)
from chat.waku.relay.verdict import ACCEPT, IGNORE, Accept, Reject, ValidationResult
from chat.waku.relay.wire import encode_publish_frame, message_id

TOPIC = "/waku/2/rs/42/0"


def rpcs(router: Router) -> list[tuple[Hashable, rpc_pb2.RPC]]:
    out = []
    for action in router.take_actions():
        if isinstance(action, Send):
            for payload in FrameDecoder(1 << 20).feed(action.frame):
                out.append((action.peer, rpc_pb2.RPC.FromString(payload)))
    return out


def publish_rpc(data: bytes, topic: str = TOPIC) -> bytes:
    (payload,) = FrameDecoder(1 << 20).feed(encode_publish_frame(topic.encode(), data))
    return payload


def subscribed_router(peers: int = 3, **kwargs: object) -> Router:
    router = Router(rng=random.Random(1), **kwargs)  # type: ignore[arg-type]
    router.subscribe(TOPIC, 0.0)
    for i in range(peers):
        router.add_peer(f"p{i}", 0.0, outbound=True)
        sub = rpc_pb2.RPC()
        sub.subscriptions.add(subscribe=True, topicid=TOPIC)
        router.handle_rpc(f"p{i}", sub.SerializeToString(), 0.0)
    router.heartbeat(1.0)
    router.take_actions()
    return router


def test_subscribe_announces_to_every_peer_and_new_peers_learn_it() -> None:
    router = Router()
    router.add_peer("a", 0.0, outbound=True)
    assert rpcs(router) == []
    router.subscribe(TOPIC, 0.0)
    ((peer, rpc),) = rpcs(router)
    assert peer == "a" and rpc.subscriptions[0].topicid == TOPIC
    router.add_peer("b", 0.0, outbound=False)
    ((peer, rpc),) = rpcs(router)
    assert peer == "b" and rpc.subscriptions[0].subscribe
    router.unsubscribe(TOPIC, 0.0)
    assert {(p, r.subscriptions[0].subscribe) for p, r in rpcs(router)} == {
        ("a", False),
        ("b", False),
    }


def test_heartbeat_grafts_subscribed_peers_and_messages_flow_through_the_mesh() -> None:
    router = subscribed_router()
    assert router.mesh[TOPIC] == {"p0", "p1", "p2"}
    router.handle_rpc("p0", publish_rpc(b"hello"), 2.0)
    actions = router.take_actions()
    delivered = [a for a in actions if isinstance(a, Deliver)]
    assert [(d.topic, d.data, d.source) for d in delivered] == [(TOPIC, b"hello", "p0")]
    assert delivered[0].message_id == message_id(b"hello")
    sends = {a.peer: a.frame for a in actions if isinstance(a, Send)}
    assert set(sends) == {"p1", "p2"}
    assert sends["p1"] == encode_publish_frame(TOPIC.encode(), b"hello")
    # The same message again is a duplicate: nothing delivered or forwarded.
    router.handle_rpc("p1", publish_rpc(b"hello"), 2.1)
    assert router.take_actions() == []
    assert router.counters.duplicates == 1


def test_a_thin_mesh_grafts_a_new_subscriber_at_once_and_forwards_to_it() -> None:
    router = Router(rng=random.Random(1))
    router.subscribe(TOPIC, 0.0)
    router.add_peer("late", 0.0, outbound=True)
    router.take_actions()
    sub = rpc_pb2.RPC()
    sub.subscriptions.add(subscribe=True, topicid=TOPIC)
    router.handle_rpc("late", sub.SerializeToString(), 0.5)  # no heartbeat in between
    assert router.mesh[TOPIC] == {"late"}
    ((peer, rpc),) = rpcs(router)
    assert peer == "late" and [g.topicID for g in rpc.control.graft] == [TOPIC]


def test_a_full_mesh_leaves_new_subscribers_to_the_heartbeat() -> None:
    router = subscribed_router(peers=4)  # d_lo peers: the mesh is not thin
    router.add_peer("late", 2.0, outbound=True)
    sub = rpc_pb2.RPC()
    sub.subscriptions.add(subscribe=True, topicid=TOPIC)
    router.handle_rpc("late", sub.SerializeToString(), 2.0)
    assert "late" not in router.mesh[TOPIC]


@pytest.mark.parametrize("field", ["from", "seqno", "signature", "key"])
def test_signed_messages_are_rejected_and_penalised(field: str) -> None:
    router = subscribed_router()
    rpc = rpc_pb2.RPC()
    msg = rpc.publish.add(data=b"signed", topic=TOPIC)
    setattr(msg, field, b"")  # present, even if empty
    router.handle_rpc("p0", rpc.SerializeToString(), 2.0)
    assert router.take_actions() == []
    assert router.counters.signed_rejected == 1
    assert router.peer_score("p0", 2.0) < -50


def test_validator_reject_penalises_and_never_forwards_ignore_does_not_penalise() -> None:
    def validator(topic: str, data: bytes, peer: Hashable) -> ValidationResult:
        if data == b"bad":
            return Reject("bad")
        if data == b"meh":
            return IGNORE
        return ACCEPT

    router = subscribed_router(validator=validator)
    router.handle_rpc("p0", publish_rpc(b"meh"), 2.0)
    assert router.take_actions() == []
    assert router.peer_score("p0", 2.0) >= 0
    router.handle_rpc("p0", publish_rpc(b"bad"), 2.0)
    assert router.take_actions() == []
    assert router.peer_score("p0", 2.0) < -50
    # Another peer forwarding the same rejected message is penalised too.
    router.handle_rpc("p1", publish_rpc(b"bad"), 2.0)
    assert router.peer_score("p1", 2.0) < -50


def test_what_the_validator_decoded_travels_with_the_delivery() -> None:
    decoded = object()
    router = subscribed_router(validator=lambda t, d, p: Accept(decoded))
    router.handle_rpc("p0", publish_rpc(b"hello"), 2.0)
    (delivery,) = [a for a in router.take_actions() if isinstance(a, Deliver)]
    assert delivery.data == b"hello" and delivery.decoded is decoded


def test_graylisted_peer_is_ignored_and_disconnected() -> None:
    router = subscribed_router(validator=lambda t, d, p: Reject("no"))
    for i in range(11):
        router.handle_rpc("p0", publish_rpc(b"bad %d" % i), 2.0)
    assert router.peer_score("p0", 2.0) < router.thresholds.graylist
    router.handle_rpc("p0", publish_rpc(b"more"), 2.0)
    assert router.counters.rpcs_from_graylisted == 1
    router.heartbeat(3.0)
    disconnects = [a for a in router.take_actions() if isinstance(a, Disconnect)]
    assert [d.peer for d in disconnects] == ["p0"]
    # The bad score survives a reconnect.
    router.remove_peer("p0", 3.0)
    router.add_peer("p0", 4.0, outbound=False)
    assert router.peer_score("p0", 4.0) < router.thresholds.graylist


def test_malformed_rpc_is_counted_and_penalised() -> None:
    router = subscribed_router()
    router.handle_rpc("p0", b"\xff\xff\xff", 2.0)
    assert router.counters.rpcs_malformed == 1
    assert router.peer_score("p0", 2.0) < 0


def test_messages_on_topics_we_are_not_in_are_dropped() -> None:
    router = subscribed_router()
    router.handle_rpc("p0", publish_rpc(b"x", topic="/waku/2/rs/42/7"), 2.0)
    assert router.take_actions() == []
    assert router.counters.unsubscribed_topic == 1


def test_publish_floods_to_all_topic_peers_and_reports_the_count() -> None:
    router = subscribed_router(peers=10)
    assert router.publish(TOPIC, b"mine", 2.0) == 10
    assert len([a for a in router.take_actions() if isinstance(a, Send)]) == 10
    with pytest.raises(DuplicateMessage):
        router.publish(TOPIC, b"mine", 2.0)
    with pytest.raises(MessageTooLarge):
        router.publish(TOPIC, b"x" * (router.params.max_message_size + 1), 2.0)


def test_publish_without_peers_raises_and_remembers_nothing() -> None:
    router = Router()
    router.subscribe(TOPIC, 0.0)
    with pytest.raises(NoPeersReached):
        router.publish(TOPIC, b"alone", 0.0)
    router.add_peer("a", 0.0, outbound=True)
    sub = rpc_pb2.RPC()
    sub.subscriptions.add(subscribe=True, topicid=TOPIC)
    router.handle_rpc("a", sub.SerializeToString(), 0.0)
    assert router.publish(TOPIC, b"alone", 1.0) == 1


def test_a_publish_whose_sends_all_failed_can_be_retracted_and_retried() -> None:
    router = subscribed_router(peers=2)
    sends = router.publish_sends(TOPIC, b"stuck", 2.0)
    assert sorted(s.peer for s in sends) == ["p0", "p1"] and router.take_actions() == []
    # The driver could queue none of them (full send queues): it takes the publish back.
    router.retract(b"stuck")
    assert (
        message_id(b"stuck") not in router.seen and router.mcache.get(message_id(b"stuck")) is None
    )
    assert router.counters.published == 0
    router.heartbeat(3.0)
    assert not any(rpc.control.ihave for _, rpc in rpcs(router))  # nothing to advertise
    assert router.publish(TOPIC, b"stuck", 4.0) == 2  # the retry is not a DuplicateMessage
    assert router.counters.published == 1
    for _ in range(router.params.history_length):  # the cache holds it for its full life
        assert router.mcache.get(message_id(b"stuck")) is not None
        router.heartbeat(5.0)
    assert router.mcache.get(message_id(b"stuck")) is None


def test_idontwant_skips_that_peer() -> None:
    router = subscribed_router()
    rpc = rpc_pb2.RPC()
    rpc.control.idontwant.add(messageIDs=[message_id(b"hello")])
    router.handle_rpc("p1", rpc.SerializeToString(), 2.0)
    router.handle_rpc("p0", publish_rpc(b"hello"), 2.0)
    sends = [a.peer for a in router.take_actions() if isinstance(a, Send)]
    assert sends == ["p2"]


def test_ihave_iwant_exchange_and_retransmission_limit() -> None:
    router = subscribed_router()
    mid = message_id(b"wanted")
    ihave = rpc_pb2.RPC()
    ihave.control.ihave.add(topicID=TOPIC, messageIDs=[mid, b"short"])
    router.handle_rpc("p0", ihave.SerializeToString(), 2.0)
    ((peer, rpc),) = rpcs(router)
    assert peer == "p0" and list(rpc.control.iwant[0].messageIDs) == [mid]
    router.handle_rpc("p0", publish_rpc(b"wanted"), 2.1)
    assert router.counters.received_after_iwant == 1
    router.take_actions()
    iwant = rpc_pb2.RPC()
    iwant.control.iwant.add(messageIDs=[mid])
    for _ in range(5):
        router.handle_rpc("p1", iwant.SerializeToString(), 2.2)
    served = [a for a in router.take_actions() if isinstance(a, Send)]
    assert len(served) == router.params.gossip_retransmission


def test_broken_iwant_promise_is_penalised() -> None:
    router = subscribed_router()
    ihave = rpc_pb2.RPC()
    ihave.control.ihave.add(topicID=TOPIC, messageIDs=[message_id(b"never sent")])
    router.handle_rpc("p0", ihave.SerializeToString(), 2.0)
    router.heartbeat(6.0)
    assert router.counters.broken_promises == 1
    assert router.peer_score("p0", 6.0) < 0


def test_graft_during_backoff_is_penalised_and_pruned() -> None:
    router = subscribed_router()
    prune = rpc_pb2.RPC()
    prune.control.prune.add(topicID=TOPIC, backoff=60)
    router.handle_rpc("p0", prune.SerializeToString(), 2.0)
    assert "p0" not in router.mesh[TOPIC]
    router.take_actions()
    graft = rpc_pb2.RPC()
    graft.control.graft.add(topicID=TOPIC)
    router.handle_rpc("p0", graft.SerializeToString(), 3.0)
    ((peer, rpc),) = rpcs(router)
    assert peer == "p0" and rpc.control.prune[0].topicID == TOPIC
    assert "p0" not in router.mesh[TOPIC]
    assert router.peer_score("p0", 3.0) < 0
    # A peer that pruned with a short backoff may graft again once it is over.
    short = rpc_pb2.RPC()
    short.control.prune.add(topicID=TOPIC, backoff=10)
    router.handle_rpc("p1", short.SerializeToString(), 3.0)
    assert "p1" not in router.mesh[TOPIC]
    router.handle_rpc("p1", graft.SerializeToString(), 14.0)
    assert "p1" in router.mesh[TOPIC]


def test_mesh_is_trimmed_to_d_keeping_outbound_peers() -> None:
    router = Router(rng=random.Random(2))
    router.subscribe(TOPIC, 0.0)
    graft = rpc_pb2.RPC()
    graft.subscriptions.add(subscribe=True, topicid=TOPIC)
    graft.control.graft.add(topicID=TOPIC)
    for i in range(12):
        # Inbound grafts stop at d_hi; outbound ones are still accepted beyond it.
        router.add_peer(i, 0.0, outbound=i >= 8)
        router.handle_rpc(i, graft.SerializeToString(), 0.0)
    assert len(router.mesh[TOPIC]) > router.params.d_hi
    router.heartbeat(1.0)
    mesh = router.mesh[TOPIC]
    assert len(mesh) == router.params.d
    assert sum(1 for p in mesh if p >= 8) >= router.params.d_out


def test_unsubscribe_prunes_the_mesh_with_the_unsubscribe_backoff() -> None:
    router = subscribed_router()
    router.unsubscribe(TOPIC, 5.0)
    prunes = [(p, r.control.prune[0].backoff) for p, r in rpcs(router) if r.control.prune]
    assert sorted(prunes) == [("p0", 5), ("p1", 5), ("p2", 5)]


def test_fanout_is_used_without_flood_publish_and_expires() -> None:
    import dataclasses

    from chat.waku.relay.params import GossipParams

    params = dataclasses.replace(GossipParams(), flood_publish=False)
    router = Router(params=params, rng=random.Random(3))
    sub = rpc_pb2.RPC()
    sub.subscriptions.add(subscribe=True, topicid=TOPIC)
    for i in range(10):
        router.add_peer(i, 0.0, outbound=True)
        router.handle_rpc(i, sub.SerializeToString(), 0.0)
    assert router.publish(TOPIC, b"via fanout", 1.0) == params.d
    assert len(router.fanout[TOPIC]) == params.d
    router.heartbeat(30.0)
    assert TOPIC in router.fanout
    router.heartbeat(62.0)
    assert TOPIC not in router.fanout


@settings(max_examples=200, deadline=None)
@given(frames=st.lists(st.binary(max_size=300), max_size=20))
def test_arbitrary_frames_never_crash_the_router(frames: list[bytes]) -> None:
    router = subscribed_router()
    for i, frame in enumerate(frames):
        router.handle_rpc("p0", frame, 2.0 + i)
        router.take_actions()
    router.heartbeat(100.0)


def test_a_hub_that_prunes_us_for_a_full_mesh_still_serves_the_topic_until_it_leaves() -> None:
    """Health counts relay peers that serve a shard: the mesh, plus a subscribed peer that
    answered our GRAFT with PRUNE (a service node already at D_hi takes our publishes and
    gossips to us). A peer that never subscribed serves nothing."""
    client = Router(rng=random.Random(3))
    client.subscribe(TOPIC, 0.0)
    client.add_peer("hub", 0.0, outbound=True)
    client.add_peer("silent", 0.0, outbound=True)
    assert client.serving_peers(TOPIC) == set()
    sub = rpc_pb2.RPC()
    sub.subscriptions.add(subscribe=True, topicid=TOPIC)
    client.handle_rpc("hub", sub.SerializeToString(), 0.1)
    assert client.mesh[TOPIC] == {"hub"} and client.serving_peers(TOPIC) == {"hub"}
    full = rpc_pb2.RPC()
    full.control.prune.add(topicID=TOPIC, backoff=60)
    client.handle_rpc("hub", full.SerializeToString(), 0.2)
    assert client.mesh[TOPIC] == set()
    assert client.serving_peers(TOPIC) == {"hub"}
    leave = rpc_pb2.RPC()
    leave.subscriptions.add(subscribe=False, topicid=TOPIC)
    client.handle_rpc("hub", leave.SerializeToString(), 0.3)
    assert client.serving_peers(TOPIC) == set()
    client.handle_rpc("hub", sub.SerializeToString(), 0.4)  # back, still in backoff
    assert client.serving_peers(TOPIC) == {"hub"}
    client.remove_peer("hub", 0.5)
    assert client.serving_peers(TOPIC) == set() and client.pruned_us[TOPIC] == set()
