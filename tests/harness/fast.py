"""The messenger configuration every in-process test network uses: the real code paths with
timers shortened from minutes to seconds, and no LAN discovery unless a test asks for it
(other chinwag processes on the same machine would otherwise join in)."""

from __future__ import annotations

from chat.contacts import RequestPolicy
from chat.messenger import MessengerConfig
from chat.reliability.outbox import RetryPolicy
from chat.reliability.store_checks import StoreCheckParams

LOOPBACK = "/ip4/127.0.0.1/tcp/0"

FAST = MessengerConfig(
    listen_addrs=(LOOPBACK,),
    retry=RetryPolicy(first_delay=0.5, max_delay=2.0, ack_timeout=3.0, max_resend_delay=6.0),
    requests=RequestPolicy(first_resend=2.0, max_resend_delay=6.0),
    store_checks=StoreCheckParams(
        first_check_after=0.3,
        check_every=0.5,
        settle=0.5,
        overlap=5.0,
        scan_every=2.0,
        retry_failed_after=0.5,
        max_fetch_delay=2.0,
    ),
    sync_delay=0.3,
    mdns=False,
)
