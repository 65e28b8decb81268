"""While offline the health view says when the next dial is due; `reconnect_now` dials at
once (issue 15 item 2). The dial schedule itself is the peer manager's, tested in
tests/unit/test_peers.py; here: what the messenger makes of it."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from harness.fake_messengers import CONFIG, Peers

from chat import events as ev
from chat.waku.health import HealthState
from chat.waku.peer_manager import DialSchedule


async def test_offline_the_view_says_when_the_next_dial_is_due_and_follows_each_dial(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    alice.node.set_online(False)
    alice.node.health.set_state(HealthState.OFFLINE)
    alice.node.set_schedule(DialSchedule(next_dial_in=6.0, dialing=0, known_peers=2))
    await trio.testing.wait_all_tasks_blocked()
    view = alice.messenger.health()
    assert (view.status, view.dialing, view.known_peers) == ("offline", 0, 2)
    assert view.next_dial_at == pytest.approx(CONFIG.clock() + 6.0, abs=0.1)
    updates = [e.health for e in alice.drain() if isinstance(e, ev.HealthUpdated)]
    assert updates and updates[-1] == view  # faces are told without asking

    alice.node.set_schedule(DialSchedule(next_dial_in=None, dialing=2, known_peers=2))
    await trio.testing.wait_all_tasks_blocked()
    updates = [e.health for e in alice.drain() if isinstance(e, ev.HealthUpdated)]
    assert [(u.dialing, u.next_dial_at) for u in updates] == [(2, None)]


async def test_reconnect_now_dials_at_once_and_tells_the_faces(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    alice.node.set_online(False)
    alice.node.set_schedule(DialSchedule(next_dial_in=7.5, dialing=0, known_peers=1))
    await trio.testing.wait_all_tasks_blocked()
    alice.drain()
    view = await alice.messenger.reconnect_now()
    assert alice.node.redials == 1
    assert (view.dialing, view.next_dial_at) == (1, None)
    assert any(isinstance(e, ev.HealthUpdated) and e.health.dialing == 1 for e in alice.drain())


async def test_reconnect_now_without_any_peer_to_dial_says_so(
    peers: Peers, autojump_clock: Any
) -> None:
    alice = await peers.start("alice")
    alice.node.set_schedule(DialSchedule(next_dial_in=None, dialing=0, known_peers=0))
    with pytest.raises(ev.NotPossible, match="no peer to reconnect to"):
        await alice.messenger.reconnect_now()
    assert alice.node.redials == 0
