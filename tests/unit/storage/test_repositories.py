from __future__ import annotations

from collections.abc import Callable

import pytest
import vodozemac

from storage.errors import DatabaseCorrupt
from storage.repositories.communities import Community, CommunityKey, StoredRequest
from storage.repositories.contacts import Contact
from storage.repositories.conversations import Conversation
from storage.repositories.messages import PageCursor
from storage.repositories.reliability import SdsChannelState, SyncCursor
from storage.store import Store

MakeConversation = Callable[..., Conversation]


def _add(store: Store, cid: str, n: int, *, body: str = "message {i}", start: int = 0) -> list[int]:
    return [
        store.messages.add(
            conversation_id=cid,
            message_id=f"{cid}-{i}",
            sender="bob",
            outgoing=False,
            body=body.format(i=i),
            sent_at=1_000 + i,
            received_at=1_000 + i,
            state="received",
            now=1_000 + i,
        )
        for i in range(start, start + n)
    ]


def test_profile_meta(store: Store) -> None:
    assert store.meta.display_name == "Alice"
    assert store.meta.created_at == 1_000
    store.meta.set("display_name", "Alice B")
    assert store.meta.display_name == "Alice B"


def test_identity_pickle_round_trip_and_wrong_key(store: Store) -> None:
    assert store.identity.load() is None
    account = vodozemac.Account()
    store.identity.save(account, chat_key="zq-chat-key", now=5)
    loaded = store.identity.load()
    assert loaded is not None
    assert loaded.ed25519_key.to_base64() == account.ed25519_key.to_base64()
    assert store.identity.chat_key() == "zq-chat-key"
    # The pickle is encrypted with a key derived from the DB key, not with a constant.
    pickle = store.db.scalar("SELECT account_pickle FROM identity")
    with pytest.raises(vodozemac.PickleException):
        vodozemac.Account.from_pickle(pickle, bytes(32))
    store.db.execute("UPDATE identity SET account_pickle = ?", (account.pickle(bytes(32)),))
    with pytest.raises(DatabaseCorrupt, match="identity"):
        store.identity.load()


def test_contacts_and_requests(store: Store) -> None:
    bob = Contact("bob-key", "bob-curve", "Bob", verified=False, blocked=False, added_at=7)
    store.contacts.upsert(bob)
    store.contacts.upsert(Contact("bob-key", "bob-curve", "Bobby", True, False, 7))
    assert store.contacts.get("bob-key") == Contact("bob-key", "bob-curve", "Bobby", True, False, 7)
    assert [c.chat_key for c in store.contacts.all()] == ["bob-key"]
    rid = store.contacts.add_request(
        chat_key="carol", direction="incoming", state="received", now=9, intro="hi"
    )
    store.contacts.set_request_state(rid, "declined", now=11, reason="spam")
    request = store.contacts.request(rid)
    assert request is not None
    assert (request.state, request.reason, request.updated_at) == ("declined", "spam", 11)
    assert store.contacts.requests(states=("received",)) == []
    assert len(store.contacts.requests()) == 1
    assert store.contacts.remove("bob-key") and not store.contacts.remove("bob-key")


def test_message_history_records_every_transition(
    store: Store, make_conversation: MakeConversation
) -> None:
    store.conversations.add(make_conversation())
    rowid = store.messages.add(
        conversation_id="c1",
        message_id="m1",
        sender="me",
        outgoing=True,
        body="hello",
        sent_at=100,
        state="queued",
        now=100,
        evidence={"outbox": "committed"},
    )
    store.messages.record_transition(rowid, "sent", at=110, evidence={"mesh_peers": 3})
    store.messages.record_transition(rowid, "stored", at=150, waku_hash=b"\x01" * 32)
    store.messages.record_transition(
        rowid, "failed", at=900, reason="retry budget spent", evidence={"attempts": 8}
    )
    history = store.messages.history(rowid)
    assert [(t.from_state, t.to_state, t.at) for t in history] == [
        (None, "queued", 100),
        ("queued", "sent", 110),
        ("sent", "stored", 150),
        ("stored", "failed", 900),
    ]
    assert history[0].evidence == {"outbox": "committed"}
    assert history[3].evidence == {"attempts": 8}
    message = store.messages.get(rowid)
    assert message is not None
    assert (message.state, message.state_reason, message.waku_hash) == (
        "failed",
        "retry budget spent",
        b"\x01" * 32,
    )
    with pytest.raises(KeyError):
        store.messages.record_transition(9999, "sent", at=1)
    with pytest.raises(ValueError, match="evidence"):
        store.messages.record_transition(rowid, "sent", at=1, evidence={"x": "y" * 20_000})
    assert len(store.messages.history(rowid)) == 4


def test_duplicate_message_id_is_rejected_without_a_partial_write(
    store: Store, make_conversation: MakeConversation
) -> None:
    store.conversations.add(make_conversation())
    _add(store, "c1", 1)
    with pytest.raises(Exception, match="UNIQUE"):
        _add(store, "c1", 1)
    assert store.messages.count() == 1
    assert store.db.scalar("SELECT count(*) FROM message_transitions") == 1


def test_paging_newest_first_then_back(store: Store, make_conversation: MakeConversation) -> None:
    store.conversations.add(make_conversation())
    store.conversations.add(make_conversation("c2"))
    _add(store, "c1", 120)
    _add(store, "c2", 5)
    newest = store.messages.page("c1", limit=50)
    assert [m.message_id for m in newest] == [f"c1-{i}" for i in range(70, 120)]
    oldest = newest[0]
    older = store.messages.page("c1", limit=50, before=PageCursor(oldest.sent_at, oldest.id))
    assert [m.message_id for m in older] == [f"c1-{i}" for i in range(20, 70)]
    assert store.messages.count("c1") == 120 and store.messages.count() == 125
    found = store.messages.by_message_id("c2", "c2-3")
    assert found is not None and found.body == "message 3"


def test_search_matches_words_and_is_safe_for_any_input(
    store: Store, make_conversation: MakeConversation
) -> None:
    store.conversations.add(make_conversation())
    store.conversations.add(make_conversation("c2"))
    _add(store, "c1", 1, body="Let's meet at the café tomorrow")
    _add(store, "c2", 1, body="the cafe is closed", start=1)
    _add(store, "c2", 1, body="nothing here", start=2)
    assert {m.body for m in store.messages.search("cafe")} == {
        "Let's meet at the café tomorrow",
        "the cafe is closed",
    }
    assert [m.body for m in store.messages.search("CAFE closed")] == ["the cafe is closed"]
    assert [m.conversation_id for m in store.messages.search("cafe", conversation_id="c1")] == [
        "c1"
    ]
    for hostile in ['"', "NEAR(", "a OR", "*", "body:x", "'); DROP TABLE messages; --"]:
        assert store.messages.search(hostile) == []
    assert store.messages.search("   ") == []


def test_deleting_a_conversation_removes_messages_history_and_index(
    store: Store, make_conversation: MakeConversation
) -> None:
    store.conversations.add(make_conversation())
    [rowid] = _add(store, "c1", 1, body="unique-word")
    store.outbox.enqueue(rowid, pubsub_topic="p", content_topic="c", payload=b"x", now=1)
    store.conversations.remove("c1")
    assert store.messages.count() == 0
    assert store.db.scalar("SELECT count(*) FROM message_transitions") == 0
    assert store.outbox.all() == []
    assert store.messages.search("unique") == []


def test_conversations_order_and_unread(store: Store, make_conversation: MakeConversation) -> None:
    store.conversations.add(make_conversation("old", now=10))
    store.conversations.add(make_conversation("new", now=20))
    store.conversations.touch("old", now=30, unread_delta=2)
    assert [c.id for c in store.conversations.recent()] == ["old", "new"]
    got = store.conversations.get("old")
    assert got is not None and got.unread == 2
    store.conversations.mark_read("old")
    got = store.conversations.get("old")
    assert got is not None and got.unread == 0


def test_outbox_due_and_attempts(store: Store, make_conversation: MakeConversation) -> None:
    store.conversations.add(make_conversation())
    a, b = _add(store, "c1", 2)
    store.outbox.enqueue(a, pubsub_topic="p", content_topic="c", payload=b"A", now=100)
    store.outbox.enqueue(b, pubsub_topic="p", content_topic="c", payload=b"B", now=200)
    assert [e.message for e in store.outbox.due(150)] == [a]
    store.outbox.record_attempt(a, next_attempt_at=300)
    assert [e.message for e in store.outbox.due(250)] == [b]
    assert [(e.message, e.attempts) for e in store.outbox.due(300)] == [(b, 0), (a, 1)]
    store.outbox.remove(a)
    assert [e.payload for e in store.outbox.all()] == [b"B"]


def test_sds_state_and_sync_cursors(store: Store) -> None:
    assert store.sds_channels.load("ch") is None
    store.sds_channels.save(SdsChannelState("ch", 5, b"\x00state", 10))
    store.sds_channels.save(SdsChannelState("ch", 6, b"\x01state", 11))
    assert store.sds_channels.load("ch") == SdsChannelState("ch", 6, b"\x01state", 11)
    cursor = SyncCursor("/waku/2/rs/42/0", "/chinwag/1/x/proto", 123, b"cur", 124)
    store.sync_cursors.save(cursor)
    assert store.sync_cursors.load("/waku/2/rs/42/0", "/chinwag/1/x/proto") == cursor
    assert store.sync_cursors.load("/waku/2/rs/42/0", "other") is None


def test_received_hash_cache_expires(store: Store) -> None:
    store.received_hashes.add([b"a" * 32, b"b" * 32], expires_at=100)
    store.received_hashes.add([b"b" * 32], expires_at=200)
    assert store.received_hashes.seen(b"a" * 32, now=50)
    assert not store.received_hashes.seen(b"a" * 32, now=100)
    assert store.received_hashes.expire(now=150) == 1
    assert store.received_hashes.seen(b"b" * 32, now=150)


def test_live_received_hashes_are_listed_longest_kept_first_and_bounded(store: Store) -> None:
    store.received_hashes.add([b"old" + bytes(29)], expires_at=100)
    store.received_hashes.add([b"mid" + bytes(29)], expires_at=300)
    store.received_hashes.add([b"new" + bytes(29)], expires_at=400)
    assert store.received_hashes.live(now=150, limit=10) == [b"new" + bytes(29), b"mid" + bytes(29)]
    assert store.received_hashes.live(now=150, limit=1) == [b"new" + bytes(29)]


def test_communities_and_key_epochs(store: Store) -> None:
    community = Community("com1", "Birders", "owner-key", b"signed", 64, "member", 5)
    store.communities.upsert(community)
    assert store.communities.get("com1") == community
    store.communities.add_key("com1", CommunityKey("content", 1, b"k1" * 16, 5))
    store.communities.add_key("com1", CommunityKey("content", 2, b"k2" * 16, 6))
    store.communities.add_key("com1", CommunityKey("shard", 1, b"s1" * 16, 5))
    current = store.communities.current_key("com1", "content")
    assert current is not None and current.epoch == 2
    assert len(store.communities.keys("com1")) == 3
    store.communities.remove("com1")
    assert store.communities.all() == [] and store.communities.keys("com1") == []


def test_telemetry_queue(store: Store) -> None:
    first = store.telemetry.push("message_sent", {"latency_ms": 12}, now=1)
    second = store.telemetry.push("message_failed", {"reason": "timeout"}, now=2)
    store.telemetry.record_failure([first])
    batch = store.telemetry.batch()
    assert [(e.id, e.attempts, e.payload) for e in batch] == [
        (first, 1, {"latency_ms": 12}),
        (second, 0, {"reason": "timeout"}),
    ]
    store.telemetry.acknowledge([first])
    assert store.telemetry.size() == 1
    with pytest.raises(ValueError):
        store.telemetry.push("big", {"x": "y" * 10_000}, now=3)


def test_a_failed_transaction_leaves_nothing_behind(
    store: Store, make_conversation: MakeConversation
) -> None:
    store.conversations.add(make_conversation())
    with pytest.raises(RuntimeError), store.db.transaction():
        _add(store, "c1", 3)  # nested transactions join the outer one
        raise RuntimeError("crash in the middle")
    assert store.messages.count() == 0


def test_olm_sessions_are_rows_per_peer_and_the_old_row_is_readable(store: Store) -> None:
    with store.db.transaction():
        store.olm_sessions.save({"aa": {"v": 1}, "bb": {"v": 2}}, now=1)
    with store.db.transaction():
        store.olm_sessions.save({"bb": {"v": 3}}, ["aa"], now=2)
    assert store.olm_sessions.load() == {"bb": {"v": 3}}
    assert store.olm_sessions.legacy() is None
    store.db.execute(
        "INSERT INTO olm_sessions (id, sessions, updated_at) VALUES (1, ?, 0)", ('{"x": 1}',)
    )
    assert store.olm_sessions.legacy() == {"x": 1}
    store.olm_sessions.delete_legacy()
    assert store.olm_sessions.legacy() is None


def test_contact_flows_of_dropped_requests_are_deleted(store: Store) -> None:
    for key in ("cw1a", "cw1b", "cw1c"):
        store.contact_flows.save(key, state="request_received", flow={}, their_link=None, now=1)
    store.contact_flows.delete(["cw1a", "cw1c"])
    assert [f.chat_key for f in store.contact_flows.all()] == ["cw1b"]


def test_community_owner_keys_and_join_requests(store: Store) -> None:
    store.communities.set_owner_seed("com1", b"s" * 32, now=1)
    assert store.communities.owner_seed("com1") == b"s" * 32
    assert store.communities.owner_seed("com2") is None
    request = StoredRequest("r1", "com1", "sent", "cw1me", "pending", {"sends": 1}, 5)
    store.communities.save_request(request)
    store.communities.save_request(
        StoredRequest("r1", "com1", "sent", "cw1me", "accepted", {"sends": 2}, 6)
    )
    assert store.communities.requests() == [
        StoredRequest("r1", "com1", "sent", "cw1me", "accepted", {"sends": 2}, 6)
    ]


def test_a_sent_join_request_keeps_its_link_and_description(store: Store) -> None:
    request = StoredRequest(
        "r2", "com1", "sent", "cw1me", "pending", {}, 5, "chinwag-community:x", b"\x01signed"
    )
    store.communities.save_request(request)
    assert store.communities.requests() == [request]
    newer = StoredRequest(
        "r2", "com1", "sent", "cw1me", "pending", {}, 6, "chinwag-community:x", b"\x02newer"
    )
    store.communities.save_request(newer)
    assert store.communities.requests() == [newer]
