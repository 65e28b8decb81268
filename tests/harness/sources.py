"""Real py-libp2p peers dialling from chosen loopback addresses (127.0.0.2, 127.0.0.3, ...):
on Linux all of 127.0.0.0/8 is loopback, so one machine can stand for peers on many
addresses, as the per-address limits of the inbound gate see them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.secp256k1 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
from libp2p.peer.id import ID
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr


@asynccontextmanager
async def plain_host() -> AsyncIterator[IHost]:
    """A py-libp2p host with the Waku transport stack (Noise, yamux, mplex) and a fresh
    peer id, listening on 127.0.0.1."""
    key_pair = create_new_key_pair()
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE_ID: NoiseTransport(key_pair, noise_privkey=create_x25519().private_key)},
        muxer_opt={YAMUX_ID: Yamux, MPLEX_PROTOCOL_ID: Mplex},
    )
    async with host.run([Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        yield host


async def dial_from(host: IHost, address: str, source_ip: str) -> ID:
    """Connect `host` to the full multiaddr `address` from `source_ip` (its socket bound
    there); returns the peer id dialled. Raises what the dial raises."""
    maddr = Multiaddr(address)
    peer_id = ID.from_base58(maddr.value_for_protocol("p2p"))
    await host.get_network().dial_addr(maddr, peer_id, source=(source_ip, 0))
    return peer_id
