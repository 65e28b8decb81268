"""Real py-libp2p hosts on 127.0.0.1 (Noise only; yamux and/or mplex) for req-res protocol tests,
and `chinwag`: real `chinwag` processes (tests/harness/processes.py), stopped when the test ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from harness.processes import Chinwag
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr
from trio.testing import MockClock

MUXERS = {
    "yamux": {YAMUX_ID: Yamux},
    "mplex": {MPLEX_PROTOCOL_ID: Mplex},
}


class Hosts:
    """Starts hosts that live until the test ends."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._scopes: dict[IHost, trio.CancelScope] = {}

    async def start(self, muxer: str = "yamux") -> IHost:
        key_pair = create_new_key_pair()
        host = new_host(
            key_pair=key_pair,
            sec_opt={NOISE_ID: NoiseTransport(key_pair, noise_privkey=create_x25519().private_key)},
            muxer_opt=MUXERS[muxer],
        )
        self._scopes[host] = await self._nursery.start(self._run, host)
        return host

    def stop(self, host: IHost) -> None:
        """Shut a host down (closes its listener and connections), as if it died."""
        self._scopes.pop(host).cancel()

    @staticmethod
    async def _run(host: IHost, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            async with host.run([Multiaddr("/ip4/127.0.0.1/tcp/0")]):
                task_status.started(scope)
                await trio.sleep_forever()

    @staticmethod
    async def connect(dialer: IHost, listener: IHost) -> None:
        await dialer.connect(PeerInfo(listener.get_id(), listener.get_addrs()))


@pytest.fixture
async def hosts() -> AsyncIterator[Hosts]:
    async with trio.open_nursery() as nursery:
        yield Hosts(nursery)
        nursery.cancel_scope.cancel()


@pytest.fixture
def clock() -> MockClock:
    """Real-speed time that a test can jump forward (TTLs, ping intervals)."""
    return MockClock(rate=1.0)


@pytest.fixture
async def chinwag(tmp_path: Path) -> AsyncIterator[Chinwag]:
    runner = Chinwag(tmp_path / "data")
    try:
        yield runner
    finally:
        with trio.CancelScope(shield=True):
            await runner.close()
