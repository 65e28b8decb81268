"""The Olm sessions are kept per peer (migration 4); a profile from before keeps working:
its single whole-structure row is moved to per-peer rows by the first save after the
upgrade, and deleted."""

from __future__ import annotations

import json
from typing import Any

import trio
from harness.fake_messengers import PASSPHRASE, Peers, befriend, texts
from harness.waiting import wait_until

from chat.direct import DirectSessions
from chat.identity_store import load_identity


async def test_a_profile_with_the_old_single_row_moves_to_per_peer_rows(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    bob = await peers.start("bob")
    chat_id = await befriend(alice, bob)
    await alice.messenger.send_text(chat_id, "before the upgrade")
    await wait_until(lambda: _count(bob, chat_id, 1))
    await trio.sleep(2)  # saved
    await peers.stop("bob")

    # Write Bob's sessions back as a version before per-peer rows kept them.
    store = peers.profiles.unlock("bob", PASSPHRASE)
    key = store.session_pickle_key
    sessions = DirectSessions.from_rows(load_identity(store), store.olm_sessions.load(), key)
    with store.db.transaction():
        store.db.execute("DELETE FROM olm_peer_sessions")
        store.db.execute(
            "INSERT INTO olm_sessions (id, sessions, updated_at) VALUES (1, ?, 0)",
            (json.dumps(sessions.pickle(key)),),
        )
    store.close()

    bob = await peers.start("bob")
    await alice.messenger.send_text(chat_id, "after the upgrade")
    await wait_until(lambda: _count(bob, chat_id, 2))
    await trio.sleep(2)
    assert bob.store.olm_sessions.legacy() is None
    assert set(bob.store.olm_sessions.load()) == {alice.messenger.me.identity_key.hex()}
    await peers.stop("bob")
    bob = await peers.start("bob")  # and from the rows alone
    await alice.messenger.send_text(chat_id, "and after a restart")
    await wait_until(lambda: _count(bob, chat_id, 3))
    assert bob.rejections() == []


async def _count(running: Any, chat_id: str, count: int) -> bool:
    return len(await texts(running, chat_id)) == count
