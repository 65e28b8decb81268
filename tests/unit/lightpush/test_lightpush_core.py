"""Light push codec, service decisions and the failover rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.waku.lightpush.client_core import ServicePool, Verdict, retry_delay, verdict
from chat.waku.lightpush.server_core import PublishRejected, push
from chat.waku.lightpush.wire import (
    LegacyPushRequest,
    LegacyPushResponse,
    LightPushStatus,
    LightPushWireError,
    OversizedMessage,
    PushRequest,
    PushResponse,
)
from chat.waku.message import WakuMessage
from chat.waku.proto import lightpush_pb2

MSG = WakuMessage(payload=b"hello", content_topic="/app/1/chat/proto", timestamp=1_700_000_000)
PUBSUB = "/waku/2/rs/42/0"


class Relay:
    """A publish function that records what it got and reaches a fixed number of peers."""

    def __init__(self, peers: int) -> None:
        self.peers = peers
        self.published: list[tuple[str, WakuMessage]] = []

    def __call__(self, pubsub_topic: str, message: WakuMessage) -> int:
        self.published.append((pubsub_topic, message))
        return self.peers


def test_v3_request_and_response_write_required_fields() -> None:
    pb = lightpush_pb2.LightPushRequest.FromString(PushRequest("", MSG).encode())
    assert pb.HasField("request_id") and pb.HasField("message")
    assert not pb.HasField("pubsub_topic")
    pb2 = lightpush_pb2.LightPushResponse.FromString(PushResponse("", 200, None, 1).encode())
    assert pb2.HasField("request_id") and pb2.HasField("status_code")
    assert PushRequest.decode(PushRequest("r", MSG, PUBSUB).encode()) == PushRequest(
        "r", MSG, PUBSUB
    )


def test_v2_response_writes_is_success_even_when_false() -> None:
    pb = lightpush_pb2.LegacyPushRpc.FromString(LegacyPushResponse("r", False).encode())
    assert pb.response.HasField("is_success") and pb.HasField("request_id")
    request = LegacyPushRequest("r", PUBSUB, MSG)
    assert LegacyPushRequest.decode(request.encode()) == request


def test_missing_fields_and_oversize_are_typed_errors() -> None:
    with pytest.raises(LightPushWireError):
        PushRequest.decode(lightpush_pb2.LightPushRequest(request_id="r").SerializeToString())
    with pytest.raises(LightPushWireError):
        LegacyPushRequest.decode(
            lightpush_pb2.LegacyPushRpc(
                request_id="r", request=lightpush_pb2.LegacyPushRequest(message=MSG.encode())
            ).SerializeToString()
        )
    big = WakuMessage(payload=b"x" * 2000, content_topic="/a/1/b/c")
    with pytest.raises(OversizedMessage):
        PushRequest.decode(PushRequest("r", big).encode(), max_message_size=1000)
    with pytest.raises(LightPushWireError):
        PushResponse.decode(b"\x0a\x01r")


@given(st.binary(max_size=512))
def test_decoders_never_raise_anything_but_their_error(data: bytes) -> None:
    for decode in (
        PushRequest.decode,
        PushResponse.decode,
        LegacyPushRequest.decode,
        LegacyPushResponse.decode,
    ):
        try:
            decode(data)
        except LightPushWireError:
            pass


def test_push_publishes_and_reports_peer_count() -> None:
    relay = Relay(3)
    outcome = push(relay, None, PUBSUB, MSG)
    assert (outcome.status, outcome.relay_peer_count) == (200, 3)
    assert relay.published == [(PUBSUB, MSG)]


def test_push_without_peers_is_505_never_200_with_zero() -> None:
    outcome = push(Relay(0), None, PUBSUB, MSG)
    assert outcome.status == LightPushStatus.NO_PEERS_TO_RELAY
    assert outcome.relay_peer_count is None


def test_push_topic_rules() -> None:
    relay = Relay(1)
    assert push(relay, None, None, MSG).status == 420  # static sharding: topic required
    assert push(relay, lambda ct: None, None, MSG).status == 420  # bad content topic
    assert push(relay, lambda ct: PUBSUB, None, MSG).status == 200
    assert push(relay, None, " ", MSG).status == 400
    assert relay.published == [(PUBSUB, MSG)]


def test_publish_rejection_status_passes_through() -> None:
    def refuse(topic: str, message: WakuMessage) -> int:
        raise PublishRejected(LightPushStatus.UNSUPPORTED_PUBSUB_TOPIC, "not on this shard")

    outcome = push(refuse, None, PUBSUB, MSG)
    assert (outcome.status, outcome.desc) == (421, "not on this shard")


def test_failover_rules_follow_reliability_4_2() -> None:
    for status in (None, 421, 500, 503, 505):
        assert verdict(status) is Verdict.REPLACE_AND_RETRY
    assert verdict(429) is Verdict.RETRY
    for status in (400, 413, 420):
        assert verdict(status) is Verdict.GIVE_UP
    assert verdict(200) is Verdict.SENT
    assert [retry_delay(a) for a in (1, 2, 3, 4)] == [0.0, 1.0, 2.0, 4.0]


def test_pool_replaces_with_next_candidate() -> None:
    pool = ServicePool(["a", "b", "c"])
    assert pool.active == ["a", "b"]
    pool.replace("a")
    assert pool.active == ["b", "c"]
    assert pool.candidates == ["b", "c", "a"]
