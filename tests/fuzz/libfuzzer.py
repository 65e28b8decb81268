"""libFuzzer's side of a run: its flags, the address-space cap that stands in for its malloc
limit, and reading its log (inputs run, coverage reached, how the run ended). No atheris
import here, so tests can use it too."""

from __future__ import annotations

import re
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fuzz.contract import Target


@dataclass(frozen=True)
class Limits:
    runs: int
    max_time: int | None
    timeout: int
    rss_limit_mb: int
    malloc_limit_mb: int
    seed: int | None


def flags(target: Target, limits: Limits, artifacts: Path, dictionary: Path | None) -> list[str]:
    flags = [
        f"-runs={limits.runs}",
        f"-timeout={limits.timeout}",
        f"-rss_limit_mb={limits.rss_limit_mb}",
        f"-max_len={target.max_len}",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/{target.name}-",
    ]
    if limits.max_time is not None:
        flags.append(f"-max_total_time={limits.max_time}")
    if limits.seed is not None:
        flags.append(f"-seed={limits.seed}")
    if dictionary is not None:
        flags.append(f"-dict={dictionary}")
    return flags


def write_dictionary(target: Target, directory: Path) -> Path | None:
    if not target.tokens:
        return None
    path = directory / f"{target.name}.dict"
    lines = ['"' + "".join(f"\\x{b:02x}" for b in token) + '"' for token in target.tokens]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def cap_address_space(headroom_mb: int) -> None:
    """Allow what the process maps now plus `headroom_mb`; beyond that, MemoryError."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return  # not Linux: the RSS limit still applies
    match = re.search(r"^VmSize:\s+(\d+) kB", status, re.MULTILINE)
    if match is None:
        return
    limit = int(match.group(1)) * 1024 + headroom_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.MULTILINE)
_PROGRESS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/", re.MULTILINE)
_RSS = re.compile(r"^#\d+\s+\w+\s.*\brss: (\d+)Mb", re.MULTILINE)
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


def parse_log(text: str, exit_code: int, killed: bool) -> dict[str, Any]:
    """What a libFuzzer run reported: inputs, coverage, peak RSS and how it ended."""
    stats = {name: int(value) for name, value in _STAT.findall(text)}
    progress = _PROGRESS.findall(text)
    outcome = "ok"
    if killed:
        outcome = "hang"
    elif "SETUP FAILED" in text:
        outcome = "setup-failed"
    elif "MemoryError" in text or "libFuzzer: out-of-memory" in text:
        outcome = "oom"
    elif "libFuzzer: timeout" in text:
        outcome = "timeout"
    elif "Uncaught Python exception" in text or "libFuzzer: deadly signal" in text:
        outcome = "crash"
    elif exit_code != 0:
        outcome = f"exit-{exit_code}"
    artifact = _ARTIFACT.search(text)
    rss = [int(value) for value in _RSS.findall(text)]
    return {
        "outcome": outcome,
        "inputs": stats.get("number_of_executed_units", 0),
        "execs_per_s": stats.get("average_exec_per_sec"),
        "peak_rss_mb": stats.get("peak_rss_mb"),
        # Growth from the first report to the last: state a target keeps between inputs (a
        # messenger, an archive) must not grow with every input.
        "rss_growth_mb": rss[-1] - rss[0] if rss else None,
        "slowest_input_s": stats.get("slowest_unit_time_sec"),
        "coverage": int(progress[-1][1]) if progress else None,
        "features": int(progress[-1][2]) if progress else None,
        "corpus": int(progress[-1][3]) if progress else None,
        "artifact": artifact.group(1) if artifact else None,
    }
