"""A protected shard on real nodes over loopback: three relays built as `chinwag node
--protected-shard` builds them (ServiceNode), a member holding the shard's private key, an
outsider without it, and a subscriber that does not validate signatures itself (so whatever a
relay forwarded to it, it would deliver).

    outsider ── R1, R2, R3 (each)         member ── R1, R2
    R1 ── R2 ── R3 ── R1                  subscriber ── R1, R2, R3

Every bad message reaches every relay straight from the outsider, so each relay must reject
each one itself; the subscriber hears only what the relays forward."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace

import pytest
import trio
from harness.protected_shard import (
    LOOPBACK,
    MINUTE_NS,
    PROTECTED,
    SHARD,
    Member,
    message,
    network,
    protected_relay,
    rejections,
)

from chat.waku.lightpush.client import push_once
from chat.waku.message import now_ns
from chat.waku.node import Node, NodeConfig
from chat.waku.protected import ShardKeyPair
from chat.waku.validation import ShardSigner

DEADLINE = 40

pytestmark = pytest.mark.slow


def topology(
    owner: ShardKeyPair,
) -> tuple[list[Member], Member, Member, Member, list[tuple[Member, Member]]]:
    relays = [protected_relay(f"R{i}", owner) for i in (1, 2, 3)]
    member, outsider, subscriber = Member("member"), Member("outsider"), Member("subscriber")
    member.relay.sign_with(PROTECTED, owner)
    links = [
        *itertools.combinations(relays, 2),
        *((outsider, relay) for relay in relays),
        *((subscriber, relay) for relay in relays),
        (member, relays[0]),
        (member, relays[1]),
    ]
    return relays, member, outsider, subscriber, links


async def test_outsiders_messages_are_all_rejected_never_forwarded_and_penalised() -> None:
    owner, impostor = ShardKeyPair.generate(), ShardKeyPair.generate()
    relays, member, outsider, subscriber, links = topology(owner)
    now = now_ns()
    bad = {
        # The outsider's own relay publishes these: it checks no signatures.
        "signature_length": [message(f"unsigned {i}") for i in range(2)],
        "signature_mismatch": [impostor.sign(PROTECTED, message(f"forged {i}")) for i in range(2)],
        # Replays of messages the owner really signed, but 6 minutes ago or ahead.
        "signed_timestamp_out_of_window": [
            owner.sign(PROTECTED, message("old", now - 6 * MINUTE_NS)),
            owner.sign(PROTECTED, message("older", now - 60 * MINUTE_NS)),
            owner.sign(PROTECTED, message("ahead", now + 6 * MINUTE_NS)),
            owner.sign(PROTECTED, message("far ahead", now + 60 * MINUTE_NS)),
        ],
    }
    expected = Counter({reason: len(messages) for reason, messages in bad.items()})
    with trio.fail_after(DEADLINE):
        async with network([*relays, member, outsider, subscriber], links):
            for messages in bad.values():
                for bad_message in messages:
                    # Raw, past the outsider's own validator (which would ignore the replays).
                    assert outsider.relay.driver.publish(PROTECTED, bad_message.encode()) == 3
            for relay in relays:
                await relay.relay.driver.wait_until(
                    lambda router, relay=relay: rejections(relay) == expected
                )
            signed = [f"signed {i}".encode() for i in range(5)]
            for payload in signed:
                assert member.relay.publish(PROTECTED, message(payload.decode())) == 2
            await subscriber.heard(len(signed))
            for relay in relays:
                await relay.heard(len(signed))

            # 100 % rejected by every relay, each for its reason, and nothing of it forwarded.
            for relay in relays:
                validator = relay.relay.validator
                assert rejections(relay) == expected, relay.name
                assert validator.accepted == len(signed), relay.name
                assert relay.payloads == signed, relay.name
                assert relay.relay.router.counters.validator_rejected == 8
            assert subscriber.payloads == signed
            # The forwarder is penalised: invalid deliveries weigh on its score, nobody else's.
            for relay in relays:
                router = relay.relay.router
                now_s = trio.current_time()
                assert router.peer_score(outsider.peer_id, now_s) < -1000, relay.name
                for honest in (subscriber, *(r for r in relays if r is not relay)):
                    assert router.peer_score(honest.peer_id, now_s) >= 0, (relay.name, honest.name)
            # ... and the node's metrics say where and why (chinwag_relay_* on /metrics).
            assert relays[0].service is not None
            exported = {m.name: m for m in await relays[0].service.collect_metrics()}
            by_reason = {
                dict(sample.labels)["reason"]: sample.value
                for sample in exported["chinwag_relay_protected_rejections_total"].samples
                if dict(sample.labels)["topic"] == PROTECTED
            }
            assert by_reason == expected
            (key_sample,) = exported["chinwag_relay_protected_shard_key"].samples
            assert dict(key_sample.labels) == {"topic": PROTECTED, "key": owner.public_key.to_hex()}

            # Keep it up and every relay graylists the outsider and closes its connection.
            for i in range(30):
                outsider.relay.publish(PROTECTED, message(f"flood {i}"))
            for relay in relays:
                await relay.relay.driver.wait_until(
                    lambda router: outsider.peer_id not in router.peers
                )
            assert not any(r.node.host.is_connected(outsider.peer_id) for r in relays)
            assert subscriber.payloads == signed


async def test_after_a_key_rotation_the_old_key_is_rejected_everywhere() -> None:
    """The owner bans someone and rotates the shard key: every relay swaps its validator's
    key at run time (the hook a community description will drive); a message signed with the
    old key is then rejected by every relay it reaches, one signed with the new key delivered."""
    old, new = ShardKeyPair.generate(), ShardKeyPair.generate()
    relays, member, outsider, subscriber, links = topology(old)
    with trio.fail_after(DEADLINE):
        async with network([*relays, member, outsider, subscriber], links):
            assert member.relay.publish(PROTECTED, message("before")) == 2
            await subscriber.heard(1)

            for relay in relays:
                assert relay.relay.validator.protect(PROTECTED, new.public_key) == old.public_key
            # The banned member still holds the old key and signs with it.
            stale_key = old.sign(PROTECTED, message("with the old key"))
            assert outsider.relay.driver.publish(PROTECTED, stale_key.encode()) == 3
            for relay in relays:
                await relay.relay.driver.wait_until(
                    lambda router, relay=relay: rejections(relay)["signature_mismatch"] == 1
                )
            member.relay.sign_with(PROTECTED, new)  # the remaining members get the new pair
            assert member.relay.publish(PROTECTED, message("after")) == 2
            await subscriber.heard(2)
            assert subscriber.payloads == [b"before", b"after"]
            for relay in relays:
                assert relay.payloads == [b"before", b"after"], relay.name
                assert relay.relay.validator.key_changes == {PROTECTED: 1}
            # The member's own relay follows its key too: the old key fails there as well.
            verdict = member.relay.validator(PROTECTED, replace(stale_key).encode(), "peer")
            assert verdict.reason == "signature_mismatch"


async def test_light_push_through_a_protecting_node_needs_the_clients_own_signature() -> None:
    """A light client signs its own message (ShardSigner, no relay) and pushes it through a
    protecting service node that holds no private key: it is relayed. Unsigned, forged or
    stale pushes are refused with 420 and a reason, and reach nobody."""
    owner = ShardKeyPair.generate()
    entry, far = protected_relay("entry", owner, lightpush=True), protected_relay("far", owner)
    subscriber = Member("subscriber")
    client = Node(NodeConfig(listen_addrs=[LOOPBACK], shards=(SHARD,)))
    signer = ShardSigner({PROTECTED: owner})
    with trio.fail_after(DEADLINE):
        async with (
            network([entry, far, subscriber], [(far, entry), (subscriber, far)]),
            client.run(),
        ):
            peer = await client.host.dial(entry.node.full_multiaddrs()[0])
            refused = [
                message("unsigned"),
                ShardKeyPair.generate().sign(PROTECTED, message("forged")),
                owner.sign(PROTECTED, message("stale", now_ns() - 6 * MINUTE_NS)),
            ]
            for bad in refused:
                attempt = await push_once(client.host.libp2p, peer, bad, PROTECTED)
                assert attempt.status_code == 420, attempt
                assert "refused before publishing" in attempt.description
            signed = signer.prepare(PROTECTED, message("signed by the client"))
            attempt = await push_once(client.host.libp2p, peer, signed, PROTECTED)
            assert attempt.status_code == 200, attempt
            await subscriber.heard(1)
            assert subscriber.payloads == [b"signed by the client"]
            assert far.payloads == [b"signed by the client"]
            assert rejections(entry) == Counter(
                signature_length=1, signature_mismatch=1, signed_timestamp_out_of_window=1
            )
