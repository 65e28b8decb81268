"""A live scenario for `chinwag lab run`: real `chinwag node` and `chinwag serve` processes,
scripted traffic over the REST API, and faults on a timeline. Loaded from TOML; every
mistake is a ScenarioError naming the file and the line.

    name = "loss-and-restart"
    duration = 20.0      # seconds of traffic
    settle = 40.0        # seconds after the last message during which deliveries still count
    late_after = 10.0    # a delivery slower than this is "late"

    [network]
    mode = "relay"       # or "light": every client (serve --light)
    light_clients = []   # or some of them light: ["client2"]
    clients = 3
    loss = 0.3           # share of outgoing relay frames each client loses (--drop-frames)
    isolation = "auto"   # "netns" (a namespace per process), "loopback", or netns if permitted

    [traffic]
    direct_interval = 1.0   # seconds between 1:1 messages (a random contact pair)
    direct_size = 120       # bytes of text per message
    groups = 1              # groups of every client, created by client 0
    group_interval = 4.0
    group_size = 200
    community_interval = 3.0  # a channel of a community every client joined (0: none)
    community_size = 150

    [[faults]]
    kind = "kill"        # kill, pause, sleep, latency, bandwidth, partition, clock_skew
    target = "node0"     # node0.., client0.., or "clients"
    at = 5.0             # seconds after traffic starts
    duration = 4.0       # kill: restart after; omitted: it never comes back
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat.lab.scenario import ScenarioError

FAULT_KINDS = ("kill", "pause", "sleep", "latency", "bandwidth", "partition", "clock_skew")
"""kill: SIGKILL, restart after `duration` (never without one); pause: SIGSTOP then SIGCONT;
sleep: a laptop lid — paused and its links cut; latency: delay (and jitter) on the target's
links; bandwidth: a rate cap on them; partition: its links cut; clock_skew: the client's
clock `offset` seconds off (restarted with `serve --clock-offset`), restored after
`duration` (never without one)."""
UNTIL_THE_END = ("kill", "clock_skew")
"""Kinds that may go without a duration: they last to the end of the run."""
MODES = ("relay", "light")
MAX_CLIENTS = 32
ISOLATIONS = ("auto", "netns", "loopback")
MAX_SIZE = 60_000
MAX_OFFSET = 86_400.0


@dataclass(frozen=True, slots=True)
class Network:
    mode: str = "relay"
    """"light": every client runs `serve --light` (filter, light push, store; no relay)."""
    light_clients: tuple[str, ...] = ()
    """In a relay network, these clients run light ("client2", ...)."""
    service_nodes: int = 1
    clients: int = 3
    loss: float = 0.0
    """Share of outgoing relay frames every client loses, for the whole run (--drop-frames)."""
    timer_scale: float = 1.0
    """The clients' re-send and store-scan timers multiplied by this (`serve --timer-scale`):
    below 1 a short run shows what minutes of real timers would."""
    peer_exchange: bool = True
    """Whether service nodes tell clients about each other; false: a client's only peers are
    the service nodes."""
    isolation: str = "auto"
    """"netns": every process in its own network namespace, reached only through the lab's
    proxies; "loopback": all on loopback; "auto": netns where this machine permits it."""

    def is_light(self, client: int) -> bool:
        return self.mode == "light" or f"client{client}" in self.light_clients


@dataclass(frozen=True, slots=True)
class Traffic:
    direct_interval: float = 1.0
    """Seconds between 1:1 messages over the whole network (0: none)."""
    direct_size: int = 100
    groups: int = 0
    group_interval: float = 5.0
    group_size: int = 100
    community_interval: float = 0.0
    """Seconds between messages in a community channel all clients joined (0: none)."""
    community_size: int = 100


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    target: str
    at: float
    duration: float | None = None
    """Seconds until it ends; None: it never does (a kill without a restart)."""
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_bps: float = 0.0
    """Bandwidth cap in bits per second (kind "bandwidth")."""
    offset: float = 0.0
    """Seconds the target's clock is ahead (negative: behind) (kind "clock_skew")."""

    @property
    def end(self) -> float | None:
        return None if self.duration is None else self.at + self.duration


@dataclass(frozen=True, slots=True)
class LiveScenario:
    name: str = "live"
    description: str = ""
    seed: int = 1
    duration: float = 20.0
    settle: float = 30.0
    late_after: float = 10.0
    network: Network = field(default_factory=Network)
    traffic: Traffic = field(default_factory=Traffic)
    faults: tuple[Fault, ...] = ()

    def targets(self) -> list[str]:
        nodes = [f"node{i}" for i in range(self.network.service_nodes)]
        return [*nodes, *(f"client{i}" for i in range(self.network.clients))]


def load_live_scenario(path: Path) -> LiveScenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_live_scenario(text, str(path))


def parse_live_scenario(text: str, where: str = "scenario") -> LiveScenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: {exc}") from None  # tomllib names line and column
    locate = _Locator(text, where)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "network":
            values[key] = _table(Network, value, locate, "network")
        elif key == "traffic":
            values[key] = _table(Traffic, value, locate, "traffic")
        elif key == "faults":
            if not isinstance(value, list):
                raise ScenarioError(locate.at("", key, "faults must be [[faults]] tables"))
            values[key] = tuple(
                _table(Fault, item, locate, "faults", index) for index, item in enumerate(value)
            )
        else:
            values[key] = value
    scenario: LiveScenario = _table(LiveScenario, values, locate, "")
    _check(scenario, data, locate)
    return scenario


class _Locator:
    """Finds the line of `key` inside a [table] (or the n-th [[table]]) of the TOML text."""

    HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")
    KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")

    def __init__(self, text: str, where: str) -> None:
        self.lines = text.splitlines()
        self.where = where

    def line(self, table: str, key: str, index: int = 0) -> int | None:
        current, seen = "", -1
        for number, line in enumerate(self.lines, start=1):
            if header := self.HEADER.match(line):
                current = header.group(2)
                if current == table and header.group(1) == "[[":
                    seen += 1
                continue
            wanted = table == current and (seen == index or not table or seen == -1)
            if wanted and (found := self.KEY.match(line)) and found.group(1) == key:
                return number
        if table:  # a whole table that is wrong: its header's line
            seen = -1
            for number, line in enumerate(self.lines, start=1):
                header = self.HEADER.match(line)
                if header and header.group(2) == table:
                    seen += 1
                    if seen == index or header.group(1) == "[":
                        return number
        return None

    def at(self, table: str, key: str, problem: str, index: int = 0) -> str:
        number = self.line(table, key, index)
        return f"{self.where}, line {number}: {problem}" if number else f"{self.where}: {problem}"


def _table(kind: Any, value: Any, locate: _Locator, table: str, index: int = 0) -> Any:
    if not isinstance(value, dict):
        raise ScenarioError(locate.at(table, "", f"[{table}] must be a table", index))
    names = {f.name: f for f in dataclasses.fields(kind)}
    for key, item in value.items():
        if key not in names:
            known = ", ".join(names)
            raise ScenarioError(
                locate.at(table, key, f"unknown key {key!r} (known: {known})", index)
            )
        expected = str(names[key].type)
        wrong = None
        if expected.startswith(("float", "int")) and item is not None:
            if isinstance(item, bool) or not isinstance(item, int | float):
                wrong = "a number"
            elif expected == "int" and not isinstance(item, int):
                wrong = "a whole number"
        elif expected == "str" and not isinstance(item, str):
            wrong = "a string"
        elif expected == "bool" and not isinstance(item, bool):
            wrong = "true or false"
        elif expected.startswith("tuple[str"):
            if not isinstance(item, list) or not all(isinstance(i, str) for i in item):
                wrong = "a list of strings"
            else:
                value = {**value, key: tuple(item)}
        if wrong:
            raise ScenarioError(
                locate.at(table, key, f"{key} must be {wrong}, not {item!r}", index)
            )
    try:
        return kind(**value)
    except TypeError as exc:
        raise ScenarioError(locate.at(table, "", str(exc), index)) from None


def _check(scenario: LiveScenario, data: dict[str, Any], locate: _Locator) -> None:
    def fail(table: str, key: str, problem: str, index: int = 0) -> None:
        raise ScenarioError(locate.at(table, key, problem, index))

    net, traffic = scenario.network, scenario.traffic
    if net.mode not in MODES:
        fail("network", "mode", f"mode must be one of {', '.join(MODES)}, not {net.mode!r}")
    if not 1 <= net.service_nodes <= 4:
        fail("network", "service_nodes", "service_nodes must be 1..4")
    if net.isolation not in ISOLATIONS:
        fail("network", "isolation", f"isolation must be one of {', '.join(ISOLATIONS)}")
    if not 2 <= net.clients <= MAX_CLIENTS:
        fail("network", "clients", f"clients must be 2..{MAX_CLIENTS}")
    if not 0 < net.timer_scale <= 1:
        fail("network", "timer_scale", "timer_scale must be in (0, 1]")
    if not 0 <= net.loss < 1:
        fail("network", "loss", "loss must be in [0, 1)")
    clients = {f"client{i}" for i in range(net.clients)}
    for name in net.light_clients:
        if name not in clients:
            fail("network", "light_clients", f"light_clients: {name!r} is not one of "
                 f"{', '.join(sorted(clients))}")  # fmt: skip
    if net.service_nodes == 1 and all(net.is_light(i) for i in range(net.clients)):
        fail("network", "mode" if net.mode == "light" else "light_clients",
             "with light clients alone, the one service node has no relay peer and refuses "
             "every light push (505, no peers to relay): keep a relay client or add a "
             "service node")  # fmt: skip
    if net.loss and any(net.is_light(i) for i in range(net.clients)):
        fail("network", "loss", "loss is the relay's frame drop (serve --drop-frames) and "
             "light clients send no relay frames: use link faults (latency, bandwidth, "
             "partition)")  # fmt: skip
    for name in ("duration", "settle", "late_after"):
        if getattr(scenario, name) <= 0:
            fail("", name, f"{name} must be positive")
    if traffic.direct_interval < 0 or traffic.group_interval <= 0:
        fail("traffic", "direct_interval", "intervals cannot be negative")
    if traffic.community_interval < 0:
        fail("traffic", "community_interval", "community_interval cannot be negative")
    if not 0 <= traffic.groups <= 8:
        fail("traffic", "groups", "groups must be 0..8")
    for key in ("direct_size", "group_size", "community_size"):
        if not 16 <= getattr(traffic, key) <= MAX_SIZE:
            fail("traffic", key, f"{key} must be 16..{MAX_SIZE} bytes")
    targets = {*scenario.targets(), "clients"}
    for index, fault in enumerate(scenario.faults):
        if fault.kind not in FAULT_KINDS:
            fail("faults", "kind", f"kind must be one of {', '.join(FAULT_KINDS)}", index)
        if fault.target not in targets:
            fail("faults", "target", f"target {fault.target!r} is not one of "
                 f"{', '.join(sorted(targets))}", index)  # fmt: skip
        if not 0 <= fault.at <= scenario.duration:
            fail("faults", "at", "at must be within the traffic's duration", index)
        if fault.duration is None and fault.kind not in UNTIL_THE_END:
            fail("faults", "duration", f"a {fault.kind} fault needs a duration", index)
        if fault.duration is not None and fault.duration <= 0:
            fail("faults", "duration", "duration must be positive", index)
        if fault.kind == "latency" and (fault.latency_ms <= 0 or fault.jitter_ms < 0):
            fail("faults", "latency_ms", "latency needs latency_ms > 0, jitter_ms >= 0", index)
        if fault.kind == "bandwidth" and fault.rate_bps < 80:
            fail("faults", "rate_bps", "bandwidth needs rate_bps of at least 80", index)
        if fault.kind in ("latency", "bandwidth", "partition", "sleep") and (
            fault.target.startswith("node")
        ):
            fail("faults", "target", "link faults act on a client's links (or all clients)", index)
        if fault.kind == "clock_skew":
            if fault.target.startswith("node"):
                fail("faults", "target", "clock_skew acts on clients (serve --clock-offset)",
                     index)  # fmt: skip
            if fault.offset == 0 or abs(fault.offset) > MAX_OFFSET:
                fail("faults", "offset", f"clock_skew needs an offset of 0 < |offset| <= "
                     f"{MAX_OFFSET:g} seconds", index)  # fmt: skip
