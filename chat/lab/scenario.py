"""A relay simulation scenario: network size, latency and loss, churn, partitions, a spammer,
traffic. A frozen dataclass with defaults, loadable from a small TOML file.

Every field of the TOML file is optional; unknown keys are an error naming the key, so a typo
never silently runs the default.
"""

from __future__ import annotations

import dataclasses
import math
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat.waku.message import DEFAULT_MAX_MESSAGE_SIZE
from chat.waku.relay.sim import LatencyModel


class ScenarioError(ValueError):
    """A scenario that cannot run: the message names the key or line."""


@dataclass(frozen=True, slots=True)
class Latency:
    """Each link's one-way latency, drawn once per link (TCP keeps frames in order)."""

    distribution: str = "uniform"
    """"uniform" (low..high), "lognormal" (median, sigma; clipped to low..high) or "fixed"."""
    low: float = 0.005
    high: float = 0.100
    median: float = 0.030
    sigma: float = 0.5

    def model(self) -> LatencyModel:
        low, high = self.low, self.high
        if self.distribution == "uniform":
            return lambda rng: rng.uniform(low, high)
        if self.distribution == "fixed":
            median = self.median
            return lambda rng: median
        mu, sigma = math.log(self.median), self.sigma
        return lambda rng: min(max(rng.lognormvariate(mu, sigma), low), high)


@dataclass(frozen=True, slots=True)
class Churn:
    """Every `interval` seconds one random online node leaves; it comes back after `downtime`
    seconds as a fresh router (no state kept) and dials `degree` random online nodes."""

    interval: float = 0.0
    """0 disables churn."""
    downtime: float = 10.0


@dataclass(frozen=True, slots=True)
class Partition:
    """From `start` until `end` (seconds after warm-up), frames between the first `fraction`
    of the nodes and the rest are lost."""

    start: float
    end: float
    fraction: float = 0.5


@dataclass(frozen=True, slots=True)
class Spammer:
    """One extra node that joins like any other, then from `start` sends invalid messages
    (the validator rejects them) to every peer it has, `rate` per second."""

    start: float = 10.0
    rate: float = 10.0
    degree: int = 8


@dataclass(frozen=True, slots=True)
class RelayScenario:
    name: str = "relay"
    seed: int = 1
    nodes: int = 1000
    degree: int = 12
    """Connections each node makes at least (the graph is a random spanning tree plus extras)."""
    d: int = 8
    d_lo: int = 6
    d_hi: int = 12
    warmup: float = 10.0
    """Seconds for meshes to form before traffic starts (not in the report's duration)."""
    duration: float = 120.0
    """Seconds of traffic."""
    settle: float = 10.0
    """Seconds after the last message during which deliveries still count."""
    publish_interval: float = 0.3
    payload_size: int = 200
    loss: float = 0.0
    latency: Latency = field(default_factory=Latency)
    churn: Churn = field(default_factory=Churn)
    partitions: tuple[Partition, ...] = ()
    spammer: Spammer | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.nodes < 2:
            problems.append("nodes must be at least 2")
        if not 0 <= self.loss < 1:
            problems.append("loss must be in [0, 1)")
        if self.publish_interval <= 0 or self.duration <= 0:
            problems.append("duration and publish_interval must be positive")
        if not 0 <= self.d_lo <= self.d <= self.d_hi:
            problems.append("need d_lo <= d <= d_hi")
        if not 16 <= self.payload_size <= DEFAULT_MAX_MESSAGE_SIZE:
            problems.append(f"payload_size must be 16..{DEFAULT_MAX_MESSAGE_SIZE} bytes")
        if self.degree < 1 or self.warmup < 0 or self.settle < 0:
            problems.append("need degree >= 1, warmup >= 0 and settle >= 0")
        if self.churn.interval < 0 or self.churn.downtime < 0:
            problems.append("churn.interval and churn.downtime cannot be negative")
        if self.spammer is not None and (self.spammer.rate <= 0 or self.spammer.degree < 1):
            problems.append("spammer.rate must be positive and spammer.degree at least 1")
        if self.latency.distribution not in ("uniform", "lognormal", "fixed"):
            problems.append("latency.distribution must be uniform, lognormal or fixed")
        if not 0 < self.latency.low <= self.latency.high:
            problems.append("need 0 < latency.low <= latency.high")
        for part in self.partitions:
            if not 0 <= part.start < part.end or not 0 < part.fraction < 1:
                problems.append("a partition needs 0 <= start < end and 0 < fraction < 1")
        if problems:
            raise ScenarioError("; ".join(problems))

    def random(self) -> random.Random:
        return random.Random(self.seed)


def load_scenario(path: Path, **overrides: Any) -> RelayScenario:
    """The scenario in a TOML file, with command-line overrides (None values ignored)."""
    return scenario_from_dict(read_scenario_file(path), str(path), **overrides)


def scenario_from_dict(
    data: dict[str, Any], where: str = "scenario", **overrides: Any
) -> RelayScenario:
    tables = {"latency": Latency, "churn": Churn, "spammer": Spammer}
    scenario: RelayScenario = build_scenario(RelayScenario, tables, data, where, overrides)
    return scenario


def read_scenario_file(path: Path) -> dict[str, Any]:
    """A scenario file's TOML; an unreadable or malformed file is one error naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: {exc}") from None


def build_scenario(
    kind: Any, tables: dict[str, Any], data: dict[str, Any], where: str,
    overrides: dict[str, Any],
) -> Any:  # fmt: skip
    """A scenario dataclass `kind` from a file's tables (`tables`: key -> the dataclass of
    that table; `[[partitions]]` is an array of them), with overrides (None ignored)."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in tables:
            values[key] = build_section(tables[key], value, f"{where}: [{key}]")
        elif key == "partitions":
            if not isinstance(value, list):
                raise ScenarioError(f"{where}: partitions must be an array of tables")
            values[key] = tuple(
                build_section(Partition, item, f"{where}: [[partitions]] #{i + 1}")
                for i, item in enumerate(value)
            )
        else:
            values[key] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    return build_section(kind, values, where)


def build_section(kind: Any, value: Any, where: str) -> Any:
    """One table of a scenario file as the dataclass `kind`; `where` names it in errors."""
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected a table")
    names = {f.name: f for f in dataclasses.fields(kind)}
    for key, item in value.items():
        if key not in names:
            raise ScenarioError(f"{where}: unknown key {key!r} (known: {', '.join(names)})")
        expected = names[key].type
        if expected in ("float", "int") and (
            isinstance(item, bool) or not isinstance(item, int | float)
        ):
            raise ScenarioError(f"{where}: {key} must be a number, not {item!r}")
        if expected == "int" and not isinstance(item, int):
            raise ScenarioError(f"{where}: {key} must be a whole number, not {item!r}")
    try:
        return kind(**value)
    except TypeError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
