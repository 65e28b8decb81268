"""What counts as one *source* for the inbound connection limits (chat/waku/inbound_limits.py).

- An IPv4 address is a source.
- An IPv6 address counts as its /64: a /64 is what one subscriber, one VPS or one LAN gets,
  and whoever holds one can pick any of its 2^64 addresses for every connection. Counted per
  full address, such a peer would have no per-source limit at all.
- An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket reports for an
  IPv4 peer) is the IPv4 address it carries.
- A trusted proxy (an address or network the operator names, typically the TLS proxy in
  front of the WebSocket port) is no source at all: every connection through it comes from a
  different client the node cannot see, so each counts as a source of its own. The totals
  still apply to them, and the proxy is where its clients are limited per address.
- Anything that is not an IP address (a transport that reports none) is a source as it is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPV6_SOURCE_PREFIX = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or networks (`127.0.0.1`, `10.0.0.0/8`, `::1`); ValueError names a bad one."""
    networks: list[Network] = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or network") from None
    return tuple(networks)


def source_group(address: str, trusted_proxies: tuple[Network, ...] = ()) -> str | None:
    """The source `address` counts as, or None for a trusted proxy (see the module doc)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # without an IPv6 zone id
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in trusted_proxies):
        return None
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    network = ipaddress.IPv6Network((ip, IPV6_SOURCE_PREFIX), strict=False)
    return str(network)
