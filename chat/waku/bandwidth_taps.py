"""Where the bandwidth meter (bandwidth.py) sees bytes: every libp2p stream and connection.

A host's notifee wraps each new stream's muxed stream, before the stream negotiates its
protocol, in a proxy that counts what `NetStream.read` and `write` move, under the protocol
id the stream then carries: one place for every protocol, ours and py-libp2p's own
(identify, ping, rendezvous), inbound and outbound. The multistream negotiation is counted as
`other` while it runs and moved to the protocol once the stream has one. Each new
connection's raw socket side (under Noise) gets the same treatment for the `wire` total, so
the Noise and muxer overhead is what the wire carried beyond the streams; the handshakes
before a connection is announced are not counted.

py-libp2p 0.8.1's `NetStream` reads and writes through its `muxed_stream` attribute, and
Noise through `read_writer.read_write_closer`; a stream or connection shaped otherwise is
left uncounted (and the meter's `untapped` says how many).
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from multiaddr import Multiaddr

from chat.waku.bandwidth import IN, OUT, BandwidthMeter, protocol_slot, wire_slot

log = logging.getLogger(__name__)

_NEGOTIATING_IN = protocol_slot(None, IN)
_NEGOTIATING_OUT = protocol_slot(None, OUT)


class CountingStream:
    """Stands in for a NetStream's muxed stream; anything but read/write goes through."""

    __slots__ = (
        "_inner",
        "_meter",
        "_negotiation_in",
        "_negotiation_out",
        "_owner",
        "_protocol",
        "_slot_in",
        "_slot_out",
    )

    def __init__(self, inner: Any, owner: Any, meter: BandwidthMeter) -> None:
        self._inner = inner
        self._owner = owner
        self._meter = meter
        self._protocol: object = None
        self._slot_in = _NEGOTIATING_IN
        self._slot_out = _NEGOTIATING_OUT
        self._negotiation_in = 0
        self._negotiation_out = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _settle(self, protocol: object) -> None:
        """The stream has its protocol: its negotiation bytes move there."""
        self._protocol = protocol
        self._slot_in = protocol_slot(str(protocol), IN)
        self._slot_out = protocol_slot(str(protocol), OUT)
        meter = self._meter
        meter.move(_NEGOTIATING_IN, self._slot_in, self._negotiation_in)
        meter.move(_NEGOTIATING_OUT, self._slot_out, self._negotiation_out)
        self._negotiation_in = self._negotiation_out = 0

    async def read(self, n: int | None = None) -> bytes:
        data: bytes = await self._inner.read(n)
        protocol = self._owner.protocol_id
        if protocol is None:
            self._negotiation_in += len(data)
        elif protocol is not self._protocol:
            self._settle(protocol)
        self._meter.count(self._slot_in, len(data))
        return data

    async def write(self, data: bytes) -> None:
        protocol = self._owner.protocol_id
        if protocol is None:
            self._negotiation_out += len(data)
        elif protocol is not self._protocol:
            self._settle(protocol)
        await self._inner.write(data)
        self._meter.count(self._slot_out, len(data))


class CountingSocket:
    """Stands in for the raw connection under Noise: every byte of the connection."""

    __slots__ = ("_inner", "_meter")

    def __init__(self, inner: Any, meter: BandwidthMeter) -> None:
        self._inner = inner
        self._meter = meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def read(self, n: int | None = None) -> bytes:
        data: bytes = await self._inner.read(n)
        self._meter.count(wire_slot(IN), len(data))
        return data

    async def write(self, data: bytes) -> None:
        await self._inner.write(data)
        self._meter.count(wire_slot(OUT), len(data))


def tap_stream(stream: INetStream, meter: BandwidthMeter) -> bool:
    inner = getattr(stream, "muxed_stream", None)
    if inner is None or not hasattr(stream, "protocol_id"):
        return False
    if not isinstance(inner, CountingStream):
        stream.muxed_stream = CountingStream(inner, stream, meter)  # type: ignore[attr-defined]
    return True


def tap_connection(conn: INetConn, meter: BandwidthMeter) -> bool:
    secured = getattr(conn.muxed_conn, "secured_conn", None)
    noise = getattr(secured, "conn", None)
    packets = getattr(noise, "read_writer", None)
    raw = getattr(packets, "read_write_closer", None)
    if raw is None:
        return False
    if not isinstance(raw, CountingSocket):
        packets.read_write_closer = CountingSocket(raw, meter)  # type: ignore[union-attr]
    return True


class BandwidthTaps(INotifee):
    """The host's notifee that puts the counters on every stream and connection."""

    def __init__(self, meter: BandwidthMeter) -> None:
        self.meter = meter
        self.untapped = 0

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        if not tap_stream(stream, self.meter):
            self.untapped += 1

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        if not tap_connection(conn, self.meter):
            self.untapped += 1

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None


async def roll_buckets(meter: BandwidthMeter) -> None:
    """Close the meter's buckets on time, so its rates hold while nobody reads them."""
    while True:
        meter.roll(trio.current_time())
        await trio.sleep(meter.bucket_seconds)
