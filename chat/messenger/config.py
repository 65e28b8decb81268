"""The messenger's settings and the limits every part of it shares."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from libp2p.crypto.keys import KeyPair

from chat.communities.join import RequestPolicy as JoinRequestPolicy
from chat.communities.shards import DEFAULT_COMMUNITY_RANGE, DEFAULT_SHARED_SHARD
from chat.config import DEFAULT_CLUSTER_ID, DEFAULT_SHARDS
from chat.contacts import RequestPolicy
from chat.events import MAX_TEXT_LENGTH as MAX_TEXT_LENGTH  # one value for every face
from chat.groups.invites import InvitePolicy
from chat.groups.keys import RotationPolicy
from chat.reliability.outbox import RetryPolicy
from chat.reliability.sds import SdsParams
from chat.reliability.store_checks import StoreCheckParams
from chat.request_budget import StrangerPolicy
from chat.waku.discovery.mdns.wire import MDNS_PORT
from chat.waku.relay.faults import RelayFaults

MAX_MESSAGE_ID_LENGTH = 64
"""Ours are 32 hex characters; a reference (reply_to) longer than this names nothing."""
MAX_SENT_AT_AHEAD_MS = 5 * 60 * 1000
"""A received message's send time (the sender's claim, any uint64 on the wire) may be this far
ahead of our clock (clocks differ); a later time has not come yet and is replaced by the
time the message arrived."""
RECEIVED_STATE = "received"
"""The state every incoming message is stored in."""
CONTACT_SHARD = 0
"""Contact requests and 1:1 conversations live on shard 0 of the cluster."""
IDLE_WAKEUP = 30.0
"""The scheduler looks around at least this often (health, cheap checks)."""
SYNC_RETRY = 5.0
"""Seconds before a sync that reached no peer is tried again."""
SAVE_DELAY = 1.0
"""Receive-side state (SDS logs, Olm ratchets) is written at most this long after it moved."""
STOP_GRACE = 10.0
"""Seconds a clean stop waits for the step under the lock to finish (and be saved) before it
cancels the messenger's tasks."""
RECEIVED_KEPT_FOR = 31 * 86_400
"""Seconds a handled message's Waku hash is remembered across restarts, a day beyond the
longest catch-up (StoreCheckParams.max_catch_up): a store scan after a restart lists messages
handled before it, and a second decryption would fail (Olm message keys are used once), so
they must be recognised as handled, not refused as replays."""
RECEIVED_LOADED = 20_000
"""Handled hashes loaded at start (the newest); older ones are checked in the profile DB."""
CATCH_UP_LIMIT = 60.0
"""A catch-up the health monitor waits for longer than this counts as failed."""
GIVE_UP_MISSING_AFTER = 600.0
"""A message waiting this long for an earlier one is shown anyway; the gap is reported."""
SCAN_JITTER = 0.2
"""Clients' store scans are staggered by up to ±20 % of their interval: members who start
together must not hit a store's global rate limit in step (StoreCheckParams.scan_jitter).
The faces' config has it (chat/session.py); the default MessengerConfig does not, so runs
that must be deterministic (the lab's messenger mode, tests) stay so."""


@dataclass(frozen=True)
class CommunityPolicy:
    community_range: tuple[int, int] = DEFAULT_COMMUNITY_RANGE
    """Shards a new community may take (the network's community range)."""
    shared_shard: int = DEFAULT_SHARED_SHARD
    """The unprotected shard for communities created with `shared_shard` (QA mass creation)."""
    fetch_timeout: float = 30.0
    """Seconds a fetch of a community's description waits before it says timed out."""
    requests: JoinRequestPolicy = field(default_factory=JoinRequestPolicy)


@dataclass(frozen=True)
class MessengerConfig:
    listen_addrs: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/0",)
    peers: tuple[str, ...] = ()
    store_peers: tuple[str, ...] = ()
    cluster_id: int = DEFAULT_CLUSTER_ID
    shards: tuple[int, ...] = DEFAULT_SHARDS
    node_key: KeyPair | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    requests: RequestPolicy = field(default_factory=RequestPolicy)
    strangers: StrangerPolicy = field(default_factory=StrangerPolicy)
    """The budget for contact requests from strangers (chat/request_budget.py)."""
    invites: InvitePolicy = field(default_factory=InvitePolicy)
    """Group invitations: lifetime, re-send schedule, failure budget (chat/groups/invites.py)."""
    group_keys: RotationPolicy = field(default_factory=RotationPolicy)
    """When a group's Megolm session rotates, and how often its key goes again to a member
    who has not confirmed it (chat/groups/keys.py)."""
    communities: CommunityPolicy = field(default_factory=CommunityPolicy)
    """Where new communities live, how long a fetch waits, join requests' schedule."""
    store_checks: StoreCheckParams = field(default_factory=StoreCheckParams)
    """Without scan jitter (deterministic runs); the faces add SCAN_JITTER (chat/session.py)."""
    sds: SdsParams = field(default_factory=lambda: SdsParams(acknowledge_by_bloom=False))
    """Delivered rests on history entries only (see SdsParams.acknowledge_by_bloom)."""
    sync_delay: float = 1.0
    give_up_missing_after: float = GIVE_UP_MISSING_AFTER
    faults: RelayFaults | None = None
    mdns: bool | None = None
    """LAN discovery; None: on when no peer is configured."""
    mdns_interfaces: tuple[str, ...] | None = None
    mdns_port: int = MDNS_PORT
    clock: Callable[[], float] = time.time
    light: bool = False
    """Light mode: filter, light push and store from the peers (service nodes), no relay."""
