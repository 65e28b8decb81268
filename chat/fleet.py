"""Fleet files: one TOML file that tells every chinwag on a network where its nodes are.

An operator publishes a fleet file; users and service nodes pass it with `--fleet FILE`.
It names the cluster, the shards, bootstrap peers and the service nodes for each role:

    name = "example"                 # optional, shown in logs
    cluster_id = 42
    shards = [0, 1]                  # optional, default chinwag's (0 and 1)
    bootstrap = ["/dns4/boot.example.org/tcp/60000/p2p/16Uiu2..."]

    [services]
    store = ["/ip4/192.0.2.10/tcp/60000/p2p/16Uiu2..."]
    filter = []
    lightpush = []

Every address is a full multiaddr ending in /p2p/<peer id>. Unknown keys are errors that
name their line, so a typo never silently drops a node. With no fleet at all chinwag finds
peers on the LAN only (mDNS).

Precedence when settings meet: command-line flags, then the fleet file, then the config
file, then the defaults. Peer lists add up (a `--peer` joins the fleet's peers).
"""

from __future__ import annotations

import argparse
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multiaddr import Multiaddr

from chat.config import DEFAULT_SHARDS, NetworkConfig
from chat.errors import UserError
from chat.waku.network import NetworkSettings

MAX_FLEET_FILE_BYTES = 1_000_000
MAX_ADDRESSES_PER_LIST = 1000
MAX_SHARD = 1023
MAX_CLUSTER = 65535
SERVICE_ROLES = ("store", "filter", "lightpush")
_TOP_KEYS = ("name", "cluster_id", "shards", "bootstrap", "services")


class FleetError(UserError):
    """The fleet file cannot be read or says something invalid; the message names the line."""


@dataclass(frozen=True)
class Fleet:
    cluster_id: int
    shards: tuple[int, ...] = DEFAULT_SHARDS
    bootstrap: tuple[str, ...] = ()
    store: tuple[str, ...] = ()
    filter: tuple[str, ...] = ()
    lightpush: tuple[str, ...] = ()
    name: str = ""

    def service(self, role: str) -> tuple[str, ...]:
        if role not in SERVICE_ROLES:
            raise ValueError(f"unknown service role {role!r}")
        addrs: tuple[str, ...] = getattr(self, role)
        return addrs

    def all_peers(self) -> tuple[str, ...]:
        """Every address in the fleet, bootstrap first, each once."""
        return _unique((*self.bootstrap, *self.store, *self.filter, *self.lightpush))


def add_fleet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fleet",
        type=Path,
        metavar="FILE",
        help="fleet file (TOML) naming the cluster, bootstrap peers and service nodes",
    )


def load_fleet(path: Path) -> Fleet:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FLEET_FILE_BYTES + 1)
    except FileNotFoundError:
        raise FleetError(f"the fleet file {path} does not exist") from None
    except OSError as exc:
        raise FleetError(f"cannot read the fleet file {path}: {exc.strerror}") from None
    if len(data) > MAX_FLEET_FILE_BYTES:
        raise FleetError(f"the fleet file {path} is over {MAX_FLEET_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FleetError(f"the fleet file {path} is not UTF-8 text") from None
    return parse_fleet(text, source=str(path))


def parse_fleet(text: str, *, source: str = "fleet file") -> Fleet:
    try:
        raw = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer over Python's 4300 digits
        raise FleetError(f"{source} is not valid TOML: {exc}") from None
    where = _Locator(text, source)
    _reject_unknown(raw, _TOP_KEYS, where, section=None)
    if "cluster_id" not in raw:
        raise FleetError(f"{source} must say which cluster it is for: add cluster_id = N")
    cluster = _whole_number(raw["cluster_id"], "cluster_id", where)
    if not 0 <= cluster <= MAX_CLUSTER:
        raise where.error("cluster_id", f"cluster_id must be 0-{MAX_CLUSTER}, not {cluster}")
    shards: tuple[int, ...] = DEFAULT_SHARDS
    if "shards" in raw:
        shards = _shards(raw["shards"], where)
    name = ""
    if "name" in raw:
        if not isinstance(raw["name"], str):
            raise where.error("name", "name must be a string")
        name = raw["name"]
    bootstrap = _addresses(raw.get("bootstrap", []), "bootstrap", where)
    services: dict[str, tuple[str, ...]] = {role: () for role in SERVICE_ROLES}
    if "services" in raw:
        table = raw["services"]
        if not isinstance(table, dict):
            raise where.error("services", "services must be a table: [services]")
        _reject_unknown(table, SERVICE_ROLES, where, section="services")
        for role in SERVICE_ROLES:
            services[role] = _addresses(table.get(role, []), role, where, section="services")
    fleet = Fleet(cluster_id=cluster, shards=shards, bootstrap=bootstrap, name=name, **services)
    if not fleet.all_peers():
        raise FleetError(
            f"{source} names no node: add bootstrap addresses or [services] nodes "
            "(without a fleet file chinwag uses LAN discovery only)"
        )
    return fleet


def resolve_network(
    network: NetworkConfig,
    fleet: Fleet | None = None,
    *,
    cluster_id: int | None = None,
    shards: Sequence[int] | None = None,
    peers: Sequence[str] = (),
    exclude_peer: str | None = None,
) -> NetworkSettings:
    """Merge flags (the keyword arguments) over the fleet over the config file's [network].

    `exclude_peer` is our own peer id: a service node listed in its own fleet file does not
    dial itself. Config-file peers are used only when neither a fleet nor `--peer` names any.
    """
    base_cluster = fleet.cluster_id if fleet else network.cluster_id
    base_shards = fleet.shards if fleet else network.shards
    fleet_peers = fleet.all_peers() if fleet else ()
    extra = tuple(peers) if peers or fleet else network.peers
    for addr in extra:
        _check_address(addr, "peer")

    def keep(addrs: Iterable[str]) -> tuple[str, ...]:
        return tuple(a for a in _unique(addrs) if peer_id_of(a) != exclude_peer)

    return NetworkSettings(
        cluster_id=cluster_id if cluster_id is not None else base_cluster,
        shards=tuple(shards) if shards else base_shards,
        peers=keep((*fleet_peers, *extra)),
        store_peers=keep(fleet.store) if fleet else (),
        filter_peers=keep(fleet.filter) if fleet else (),
        lightpush_peers=keep(fleet.lightpush) if fleet else (),
        fleet_name=fleet.name if fleet else "",
    )


DIALABLE_HOSTS = ("ip4", "ip6", "dns", "dns4", "dns6")
DIALABLE_TRANSPORTS: tuple[tuple[str, ...], ...] = ((), ("ws",), ("wss",))
"""What may sit between /tcp/<port> and /p2p/<peer id>: chinwag dials TCP and WebSocket."""


def dial_problem(addr: str) -> str | None:
    """Why chinwag cannot dial this full multiaddr (a phrase to follow the address), or
    None. A peer with no host and port, or on a transport we do not speak (QUIC, WebRTC),
    would be accepted and then never reached: offline for good, with no word why."""
    try:
        protocols = [p.name for p in Multiaddr(addr).protocols()]
    except Exception:
        return "is not a multiaddr"
    if (
        len(protocols) < 3
        or protocols[0] not in DIALABLE_HOSTS
        or protocols[1] != "tcp"
        or tuple(protocols[2:-1]) not in DIALABLE_TRANSPORTS
    ):
        return (
            "is not an address chinwag can dial: it needs a host and a TCP port before "
            "/p2p/, as in /ip4/192.0.2.10/tcp/60000/p2p/<peer id> (or .../tcp/8000/ws/p2p/...)"
        )
    return None


def peer_id_of(addr: str) -> str | None:
    """The /p2p/ peer id at the end of a full multiaddr, None if there is none."""
    try:
        return str(Multiaddr(addr).value_for_protocol("p2p"))
    except Exception:
        return None


# --- validation helpers ---------------------------------------------------------------------


class _Locator:
    """Finds the line a key sits on, for error messages (tomllib does not report it)."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source

    def line_of(self, key: str, section: str | None = None) -> int | None:
        current: str | None = None
        key_pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*[=.]")
        for number, line in enumerate(self.lines, start=1):
            header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
            if header:
                current = header.group(1).strip().strip('"')
                if section is None and current == key:
                    return number
                if section is not None and current == f"{section}.{key}":
                    return number
                continue
            if current == section and key_pattern.match(line):
                return number
            if section is not None and current is None:
                dotted = re.match(rf"^\s*{re.escape(section)}\.{re.escape(key)}\s*=", line)
                if dotted:
                    return number
        return None

    def error(self, key: str, message: str, section: str | None = None) -> FleetError:
        line = self.line_of(key, section)
        at = f"{self.source}, line {line}" if line else self.source
        return FleetError(f"{at}: {message}")


def _reject_unknown(
    table: Mapping[str, Any], known: Sequence[str], where: _Locator, section: str | None
) -> None:
    for key in table:
        if key not in known:
            place = f"in [{section}] " if section else ""
            raise where.error(
                key,
                f"unknown setting '{key}' {place}(known: {', '.join(known)})",
                section,
            )


def _whole_number(value: Any, key: str, where: _Locator) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(key, f"{key} must be a whole number, not {value!r}")
    return value


def _shards(value: Any, where: _Locator) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise where.error("shards", "shards must be a non-empty list of shard numbers")
    for s in value:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SHARD:
            raise where.error("shards", f"shards must hold numbers 0-{MAX_SHARD}, not {s!r}")
    return tuple(sorted(set(value)))


def _addresses(
    value: Any, key: str, where: _Locator, section: str | None = None
) -> tuple[str, ...]:
    label = f"{section}.{key}" if section else key
    if not isinstance(value, list):
        raise where.error(key, f"{label} must be a list of multiaddr strings", section)
    if len(value) > MAX_ADDRESSES_PER_LIST:
        raise where.error(key, f"{label} lists over {MAX_ADDRESSES_PER_LIST} addresses", section)
    for item in value:
        if not isinstance(item, str):
            raise where.error(key, f"{label} must hold multiaddr strings, not {item!r}", section)
        try:
            _check_address(item, label)
        except FleetError as exc:
            raise where.error(key, str(exc), section) from None
    return _unique(value)


def _check_address(addr: str, label: str) -> None:
    try:
        Multiaddr(addr)
    except Exception:
        raise FleetError(f"{label}: {addr!r} is not a multiaddr") from None
    if peer_id_of(addr) is None:
        raise FleetError(f"{label}: {addr} must end in /p2p/<peer id>")
    if (problem := dial_problem(addr)) is not None:
        raise FleetError(f"{label}: {addr} {problem}")


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
