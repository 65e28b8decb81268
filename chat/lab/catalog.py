"""The scenarios shipped in chat/lab/scenarios/: `relay-*.toml` for `chinwag lab sim`, the
others for `chinwag lab run`. `chinwag lab list` shows them; `lab run NAME` finds one."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from chat.lab.live_scenario import LiveScenario, load_live_scenario, parse_live_scenario
from chat.lab.scenario import ScenarioError

SIM_PREFIX = "relay-"
SIM_PREFIXES = (SIM_PREFIX, "messenger-")


@dataclass(frozen=True, slots=True)
class Shipped:
    name: str
    kind: str
    """"sim" or "run"."""
    description: str


def _directory() -> Path:
    return Path(str(resources.files("chat.lab") / "scenarios"))


def _first_comment(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def shipped_scenarios() -> list[Shipped]:
    out = []
    for path in sorted(_directory().glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        kind = "sim" if path.name.startswith(SIM_PREFIXES) else "run"
        description = ""
        if kind == "run":
            description = str(tomllib.loads(text).get("description", ""))
        out.append(Shipped(path.stem, kind, description or _first_comment(text)))
    return out


def resolve_live_scenario(name_or_path: str) -> LiveScenario:
    """A scenario file, or the name of a shipped `lab run` scenario."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return load_live_scenario(path)
    shipped = _directory() / f"{name_or_path}.toml"
    if not shipped.is_file() or name_or_path.startswith(SIM_PREFIXES):
        names = ", ".join(s.name for s in shipped_scenarios() if s.kind == "run")
        raise ScenarioError(f"no scenario file or shipped scenario {name_or_path!r} "
                            f"(shipped: {names})")  # fmt: skip
    return parse_live_scenario(shipped.read_text(encoding="utf-8"), shipped.name)
