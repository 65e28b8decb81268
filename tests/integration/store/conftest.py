"""Real py-libp2p hosts on 127.0.0.1 (Noise only, yamux + mplex) for the store tests.

(The lead will later point this at the shared host module.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr

HostFactory = Callable[[], AbstractAsyncContextManager[Any]]


@asynccontextmanager
async def running_host() -> AsyncIterator[Any]:
    key_pair = create_new_key_pair()
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE_ID: NoiseTransport(key_pair, noise_privkey=create_x25519().private_key)},
        muxer_opt={YAMUX_ID: Yamux, MPLEX_PROTOCOL_ID: Mplex},
    )
    async with host.run([Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        yield host


async def connect(client: Any, server: Any) -> None:
    addr = server.get_addrs()[0]
    if "/p2p/" not in str(addr):
        addr = Multiaddr(f"{addr}/p2p/{server.get_id()}")
    await client.connect(info_from_p2p_addr(addr))


@pytest.fixture
def host_factory() -> HostFactory:
    return running_host
