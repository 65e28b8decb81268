"""What the packaging tests (tests/packaging) share: building the one-file binary and the wheel
with the project's own scripts, running the packaged `chinwag` instead of `python -m chat.cli`,
and running it under the kernel's memory-deny-write-execute (what the systemd unit's
MemoryDenyWriteExecute=yes asks for), so that a dependency needing writable code fails here."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from chat.cli import build_parser
from chat.commands.node import service_config_from
from chat.config import Config, load_config
from chat.waku.service_node import ServiceNodeConfig
from harness.processes import Chinwag

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
ENABLE_ENV = "CHINWAG_PACKAGING_TESTS"
"""Set to 1 (`make test-packaging` does) to run the tests that build the binary or install the
wheel: they take minutes on two cores, too long for the default suite."""
BINARY_ENV = "CHINWAG_BINARY"
"""A binary built already (`make test-packaging` builds it first); unset, the tests build it."""
BUILD_DEADLINE = 900.0
NO_WRITE_EXECUTE = Path(__file__).with_name("no_write_execute.py")


def enabled() -> bool:
    return os.environ.get(ENABLE_ENV) == "1"


needs_packaging = pytest.mark.skipif(
    not enabled(),
    reason=f"builds the binary or installs the wheel: run `make test-packaging` ({ENABLE_ENV}=1)",
)
"""For the tests that take minutes: they run under `make test-packaging` only."""


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        version: str = tomllib.load(file)["project"]["version"]
    return version


def run_script(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One of packaging/'s build scripts, to the end; fails the test with its output if it
    fails."""
    done = subprocess.run(
        [str(PACKAGING / script), *args], cwd=ROOT, capture_output=True, text=True,
        timeout=BUILD_DEADLINE, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    return done


def build_binary() -> Path:
    """dist/chinwag, built now unless CHINWAG_BINARY names one built already."""
    given = os.environ.get(BINARY_ENV)
    if given:
        binary = Path(given) if Path(given).is_absolute() else ROOT / given
        assert binary.is_file(), f"{BINARY_ENV}={given}: no such file"
        return binary
    run_script("build-binary.sh")
    return ROOT / "dist" / "chinwag"


def build_wheel(out_dir: Path) -> Path:
    run_script("build-wheel.sh", str(out_dir))
    [wheel] = out_dir.glob("chinwag-*.whl")
    return wheel


def write_execute_wrapper() -> tuple[str, ...]:
    """The command prefix that runs a program with memory that is never both writable and
    executable, or () where the kernel cannot enforce it (before Linux 6.3)."""
    probe = subprocess.run(
        [sys.executable, str(NO_WRITE_EXECUTE), "--probe"], capture_output=True, check=False
    )
    return (sys.executable, str(NO_WRITE_EXECUTE)) if probe.returncode == 0 else ()


@dataclass
class PackagedChinwag(Chinwag):
    """`Chinwag` (tests/harness/processes.py) running a packaged executable: the one-file
    binary, or the console script a wheel installed."""

    program: Sequence[str] = field(default_factory=tuple)

    def command(self, *args: str) -> list[str]:
        return [*self.wrapper, *self.program, "--data-dir", str(self.data_dir), *args]


def service_config_of(
    argv: Sequence[str], paths: Mapping[str, Path], data_dir: Path
) -> tuple[ServiceNodeConfig, Config]:
    """What `chinwag ARGV` (a `node` command line from the systemd unit or the Containerfile)
    would run, parsed by chinwag's own parser: the installed paths in `paths` are replaced
    by the repository's files, --data-dir by `data_dir`. Bad options fail as they would at
    start (UserError)."""
    local = [str(paths.get(word, word)) for word in argv]
    if "--data-dir" in local:
        local[local.index("--data-dir") + 1] = str(data_dir)
    args = build_parser().parse_args(local)
    assert args.command == "node", f"not a node command line: {argv}"
    config = load_config(config_file=args.config, data_dir=args.data_dir)
    return service_config_from(args, config), config


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


async def run_to_end(
    command: Sequence[str], env: Mapping[str, str] | None = None, limit: float = BUILD_DEADLINE
) -> Finished:
    """A command run to its end from a trio test (no blocking call in the event loop)."""
    with trio.fail_after(limit):
        done = await trio.run_process(
            list(command), capture_stdout=True, capture_stderr=True, check=False,
            env=None if env is None else dict(env),
        )  # fmt: skip
    return Finished(done.returncode, done.stdout.decode(), done.stderr.decode())


SYSTEMD = PACKAGING / "systemd"
UNIT = SYSTEMD / "chinwag-node.service"
INSTALLED_CONFIG = {
    "/etc/chinwag/config.toml": SYSTEMD / "config.toml",
    "/etc/chinwag/node.env": SYSTEMD / "node.env",
}
"""Where the unit reads its configuration files, and their examples in the repository."""


def unit_directives() -> dict[str, list[str]]:
    """The unit's `Key=value` lines (every value of a key that repeats)."""
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def environment_file(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )


def unit_command() -> list[str]:
    """The unit's ExecStart, with $CHINWAG_NODE_OPTIONS from the example node.env."""
    unit = unit_directives()
    [environment] = unit["EnvironmentFile"]
    options = environment_file(INSTALLED_CONFIG[environment])["CHINWAG_NODE_OPTIONS"]
    words: list[str] = []
    for word in shlex.split(unit["ExecStart"][0]):
        # systemd splits an unquoted $VARIABLE at white space, as here.
        words += options.split() if word == "$CHINWAG_NODE_OPTIONS" else [word]
    return words
