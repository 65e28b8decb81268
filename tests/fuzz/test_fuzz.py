"""Every fuzz target runs for a bounded time in CI (the long run is in docs/fuzzing.md), and
the runner tells crashes, hangs and memory blow-ups apart on real libFuzzer runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris has wheels for Linux x86_64 only (pyproject.toml)")

from fuzz.catalog import TARGETS
from fuzz.libfuzzer import parse_log

RUN = Path(__file__).resolve().parent / "run.py"
CI_RUNS = 4000
CI_SECONDS = 2


def _tail(path: str) -> str:
    lines = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if not line.startswith("INFO: Instrumenting"))[-4000:]


@pytest.mark.slow
@pytest.mark.fuzz
def test_every_decoder_keeps_its_contract_under_fuzzing(tmp_path: Path) -> None:
    command = [sys.executable, str(RUN), "--runs", str(CI_RUNS), "--max-time", str(CI_SECONDS)]
    command += ["--work-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    summary = json.loads(done.stdout)
    results = {r["target"]: r for r in summary["targets"]}
    assert set(results) == set(TARGETS)
    failures = [
        f"{name}: {r['outcome']} (input: {r['artifact']})\n{_tail(r['log'])}"
        for name, r in results.items()
        if r["outcome"] != "ok"
    ]
    assert not failures, "\n\n".join(failures)
    for name, result in results.items():
        assert result["inputs"] > 0, name
    assert done.returncode == 0


TOY_TARGET = """
import sys
import atheris
from fuzz.libfuzzer import cap_address_space

def one(data: bytes) -> None:
    if data == b"crash":
        raise IndexError("a decoder's bug")
    if data == b"hang":
        while True:
            pass
    if data == b"grow":
        bytearray(1 << 30)  # past the cap below: MemoryError at once, nothing touched

cap_address_space(256)
atheris.Setup(sys.argv, one)
atheris.Fuzz()
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "outcome"), [("crash", "crash"), ("hang", "timeout"), ("grow", "oom"), ("ok", "ok")]
)
def test_the_runner_tells_crashes_hangs_and_memory_blowups_apart(
    tmp_path: Path, name: str, outcome: str
) -> None:
    """A toy target run by the real libFuzzer, as run.py runs targets, under its limits."""
    script = tmp_path / "toy.py"
    script.write_text(textwrap.dedent(TOY_TARGET))
    case = tmp_path / name
    case.write_bytes(name.encode())
    command = [sys.executable, str(script), "-timeout=2", "-rss_limit_mb=2048", str(case)]
    env = {**os.environ, "PYTHONPATH": str(RUN.parent.parent)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)
    report = parse_log(done.stdout + done.stderr, done.returncode, killed=False)
    assert report["outcome"] == outcome, done.stderr[-2000:]
    assert (done.returncode == 0) == (outcome == "ok")
