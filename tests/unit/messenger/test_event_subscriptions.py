"""A face's event subscription is forgotten the moment it is closed, not when the messenger
next emits an event: a quiet messenger must not keep the event streams clients opened and
closed (found by the fuzz campaign: about 1.7 KB kept per closed /v1/events stream)."""

from __future__ import annotations

from typing import Any

import trio
from harness.fake_messengers import Peers
from harness.http_memory import memory_connection

from chat import events as ev
from chat.api.app import ApiApp
from chat.api.handlers import Handlers
from chat.api.routing import Router
from chat.waku.health import HealthState

TOKEN = "t" * 43
EVENTS_REQUEST = (
    f"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
)
STREAMS = 1000


async def test_closing_a_subscription_forgets_it_at_once(peers: Peers, autojump_clock: Any) -> None:
    alice = await peers.start("alice")
    messenger = alice.messenger
    baseline = messenger.event_subscribers
    with messenger.subscribe() as events:  # as the TUI holds its subscription
        assert messenger.event_subscribers == baseline + 1
        alice.node.health.set_state(HealthState.OFFLINE)
        assert isinstance(await events.receive(), ev.HealthUpdated)
    assert messenger.event_subscribers == baseline
    async with messenger.subscribe():
        assert messenger.event_subscribers == baseline + 1
    assert messenger.event_subscribers == baseline
    subscription = messenger.subscribe()
    subscription.close()
    subscription.close()  # twice is harmless
    assert messenger.event_subscribers == baseline


async def test_a_thousand_closed_event_streams_leave_nothing_subscribed(
    peers: Peers, autojump_clock: Any
) -> None:
    """Each stream: GET /v1/events over the API's real HTTP connection code, read up to the
    first comment, then the client leaves. The messenger emits nothing meanwhile."""
    alice = await peers.start("alice")
    messenger = alice.messenger
    app = ApiApp(Router(Handlers(messenger, keepalive=3600).routes()), TOKEN, b"{}")
    baseline = messenger.event_subscribers
    dropped = messenger.events_dropped
    for _ in range(STREAMS):
        async with memory_connection(app) as client:
            head = await _open_stream(client)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert messenger.event_subscribers == baseline + 1
        assert messenger.event_subscribers == baseline
    assert messenger.events_dropped == dropped
    # A stream still gets what is emitted once it is open.
    async with memory_connection(app) as client:
        await _open_stream(client)
        alice.node.health.set_state(HealthState.OFFLINE)
        seen = b""
        with trio.fail_after(5):
            while b"event: health_updated" not in seen:
                seen += await client.receive_some(4096)
    assert messenger.event_subscribers == baseline


async def _open_stream(client: trio.abc.Stream) -> bytes:
    """Ask for the event stream; what came up to its first comment (head included)."""
    await client.send_all(EVENTS_REQUEST)
    head = b""
    with trio.fail_after(5):
        while b": connected" not in head:
            head += await client.receive_some(4096)
    return head
