"""Bootstrap hints: a few full multiaddrs of peers on a shard, handed to someone else (a
community link carries them) so that a node whose fleet does not serve the shard can still
reach it.

`pick_bootstrap` chooses what to hand out from the peers we are connected to: one dialable
address per peer (never a wildcard), public ones only when there are any (a private or
loopback address means nothing outside our network; on a LAN or in a test it is all there
is). `parse_bootstrap` checks one received hint; a bad one is the caller's to log and skip.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from libp2p.peer.id import ID
from multiaddr import Multiaddr

TRANSPORTS = ("tcp",)
"""What a chinwag node dials (py-libp2p's TCP transport)."""

PUBLIC, PRIVATE, LOOPBACK = 2, 1, 0


class BootstrapError(ValueError):
    """A bootstrap hint that cannot be dialled."""


def reach(addr: Multiaddr) -> int | None:
    """PUBLIC, PRIVATE or LOOPBACK; None when it cannot be dialled (no TCP, a wildcard IP,
    a /p2p-circuit or other address we do not dial)."""
    names = [proto.name for proto, _ in addr.items()]
    if not names or not any(name in TRANSPORTS for name in names):
        return None
    if "p2p-circuit" in names:
        return None
    first, value = next(iter(addr.items()))
    if first.name in ("dns", "dns4", "dns6"):
        return LOOPBACK if str(value) == "localhost" else PUBLIC
    if first.name not in ("ip4", "ip6"):
        return None
    ip = ipaddress.ip_address(str(value))
    if ip.is_unspecified or ip.is_multicast:
        return None
    if ip.is_loopback:
        return LOOPBACK
    return PUBLIC if ip.is_global else PRIVATE


def pick_bootstrap(
    candidates: Iterable[tuple[ID, Sequence[Multiaddr]]], limit: int, max_length: int
) -> list[str]:
    """At most `limit` full multiaddrs (`<addr>/p2p/<id>`, each at most `max_length`
    characters), one per peer, in the candidates' order; public ones only if any."""
    chosen: list[tuple[int, str]] = []
    seen: set[ID] = set()
    for peer, addrs in candidates:
        if peer in seen:
            continue
        seen.add(peer)
        best: tuple[int, str] | None = None
        for addr in addrs:
            level = reach(addr)
            if level is None:
                continue
            full = f"{_without_peer(addr)}/p2p/{peer.to_base58()}"
            if len(full) <= max_length and (best is None or level > best[0]):
                best = (level, full)
        if best is not None:
            chosen.append(best)
    if not chosen:
        return []
    widest = max(level for level, _ in chosen)
    if widest == PUBLIC:
        chosen = [entry for entry in chosen if entry[0] == PUBLIC]
    return [full for _, full in chosen[:limit]]


def parse_bootstrap(text: str) -> tuple[ID, Multiaddr]:
    """(peer id, the address without /p2p) of one hint; BootstrapError says why not."""
    try:
        addr = Multiaddr(text)
        peer = ID.from_base58(str(addr.value_for_protocol("p2p")))
    except Exception as exc:  # multiaddr and base58 raise several types for bad text
        raise BootstrapError(
            f"{text[:80]!r} is not a multiaddr ending in /p2p/<peer id>: {exc}"
        ) from None
    bare = Multiaddr(_without_peer(addr))
    if reach(bare) is None:
        raise BootstrapError(f"{text[:80]!r} is not an address chinwag can dial")
    return peer, bare


def _without_peer(addr: Multiaddr) -> str:
    text = str(addr)
    return text[: text.index("/p2p/")] if "/p2p/" in text else text
