"""What the packaging tests (tests/packaging) share: building the one-file binary and the wheel
with the project's own scripts, running the packaged `chinwag` instead of `python -m chat.cli`,
and running it under the kernel's memory-deny-write-execute (what the systemd unit's
MemoryDenyWriteExecute=yes asks for), so that a dependency needing writable code fails here."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
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
