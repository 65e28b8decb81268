"""A messenger-level simulation scenario (`mode = "messenger"`): clients running the real
messenger, the service nodes they attach to, their contacts, traffic and faults. Latency,
churn and partitions are written as in a relay scenario (chat/lab/scenario.py); a partition
splits the service nodes (each client stays with its own).

Every field is optional; unknown keys are an error naming the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat.lab.scenario import (
    Churn,
    Latency,
    Partition,
    ScenarioError,
    build_scenario,
    read_scenario_file,
)

MODE = "messenger"


@dataclass(frozen=True, slots=True)
class MessengerScenario:
    mode: str = MODE
    name: str = "messenger"
    seed: int = 1
    clients: int = 100
    service_nodes: int = 4
    """Clients attach to them in turn (client i to service node i mod service_nodes)."""
    contacts: int = 1
    """Each client asks the next `contacts` clients (in a ring) to be contacts."""
    warmup: float = 20.0
    """Seconds for the contact requests to be made and accepted, without faults."""
    duration: float = 120.0
    """Seconds of traffic, during which the faults come and go."""
    settle: float = 200.0
    """Seconds after the traffic for re-sends, store checks and acknowledgements."""
    message_interval: float = 1.0
    """Seconds between messages; each goes from a random client to a random contact."""
    late_after: float = 10.0
    """A message held later than this after it was sent counts as late."""
    store_timeout: float = 10.0
    loss: float = 0.0
    latency: Latency = field(default_factory=Latency)
    churn: Churn = field(default_factory=Churn)
    """Churn takes a client offline (its node keeps nothing of the network meanwhile)."""
    partitions: tuple[Partition, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if self.mode != MODE:
            problems.append(f'mode must be "{MODE}" here')
        if self.clients < 2 or self.service_nodes < 1:
            problems.append("need clients >= 2 and service_nodes >= 1")
        if not 1 <= self.contacts < self.clients:
            problems.append("contacts must be in 1..clients-1")
        if not 0 <= self.loss < 1:
            problems.append("loss must be in [0, 1)")
        if self.message_interval <= 0 or self.duration <= 0:
            problems.append("duration and message_interval must be positive")
        if self.warmup < 5 or self.settle < 0 or self.late_after <= 0:
            problems.append("need warmup >= 5, settle >= 0 and late_after > 0")
        if self.store_timeout <= 0:
            problems.append("store_timeout must be positive")
        if self.churn.interval < 0 or self.churn.downtime < 0:
            problems.append("churn.interval and churn.downtime cannot be negative")
        if self.latency.distribution not in ("uniform", "lognormal", "fixed"):
            problems.append("latency.distribution must be uniform, lognormal or fixed")
        if not 0 < self.latency.low <= self.latency.high:
            problems.append("need 0 < latency.low <= latency.high")
        for part in self.partitions:
            if not 0 <= part.start < part.end or not 0 < part.fraction < 1:
                problems.append("a partition needs 0 <= start < end and 0 < fraction < 1")
            elif not 0 < int(self.service_nodes * part.fraction) < self.service_nodes:
                problems.append("a partition must leave service nodes on both sides")
        if problems:
            raise ScenarioError("; ".join(problems))


def is_messenger_file(path: Path) -> bool:
    """Whether a scenario file says `mode = "messenger"` (unreadable files: no; the relay
    loader reports their error)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return data.get("mode") == MODE


def load_messenger_scenario(path: Path, **overrides: Any) -> MessengerScenario:
    return messenger_scenario_from_dict(read_scenario_file(path), str(path), **overrides)


def messenger_scenario_from_dict(
    data: dict[str, Any], where: str = "scenario", **overrides: Any
) -> MessengerScenario:
    tables = {"latency": Latency, "churn": Churn}
    scenario: MessengerScenario = build_scenario(MessengerScenario, tables, data, where, overrides)
    return scenario


def scenario_dict(scenario: MessengerScenario) -> dict[str, object]:
    data = dataclasses.asdict(scenario)
    data["partitions"] = [dict(p) for p in data["partitions"]]
    return data
