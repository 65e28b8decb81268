"""Runs fuzz targets under atheris (libFuzzer) and prints a JSON summary.

    python tests/fuzz/run.py --total 1000000          # the long run (docs/fuzzing.md)
    python tests/fuzz/run.py --runs 2000 --max-time 2  # every target briefly (what CI does)
    python tests/fuzz/run.py --target sds_frames --runs 100000
    python tests/fuzz/run.py --target sds_frames --reproduce crash-file

This process imports every decoder once, instrumented for coverage, then forks one child per
target: the child writes the target's seed corpus (made by the real encoders) and fuzzes it
until its input budget or time is spent, or until the first crash, timeout or
out-of-memory. libFuzzer's output goes to one log per target under the work directory, with
any crashing input beside it.

Limits: `-timeout` (seconds per input) and `-rss_limit_mb` are libFuzzer's. Its
`-malloc_limit_mb` needs the sanitizer runtime's malloc hooks, which atheris' prebuilt
libFuzzer lacks, so each child's address space is capped instead (RLIMIT_AS, at what the
target needs after setup plus `--malloc-limit-mb`): an allocation past that raises
MemoryError, which escapes the target and counts as an out-of-memory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from hashlib import sha1
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
# Run as a script, this folder is first on sys.path, where its modules would shadow
# installed packages of the same name; the package lives one level up.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(TESTS))

import atheris  # noqa: E402

with atheris.instrument_imports(
    include=["chat", "storage"], exclude=["chat.proto", "chat.waku.proto"]
):
    from fuzz.catalog import TARGETS

from fuzz.contract import SCRATCH_ENV, Target  # noqa: E402
from fuzz.libfuzzer import (  # noqa: E402
    Limits,
    cap_address_space,
    flags,
    parse_log,
    write_dictionary,
)

SETUP_ALLOWANCE = 120.0
"""Seconds a child may spend on setup and seeds before its time budget starts."""


def _prepare(target: Target, limits: Limits, work: Path, inputs: list[Path]) -> list[str]:
    """In the forked child: seeds, dictionary and limits; returns libFuzzer's argv."""
    corpus = work / "corpus" / target.name
    corpus.mkdir(parents=True, exist_ok=True)
    os.environ[SCRATCH_ENV] = str(work / "scratch" / target.name)
    if not inputs:
        for seed in target.seeds():
            (corpus / sha1(seed).hexdigest()).write_bytes(seed)
    dictionary = write_dictionary(target, work)
    cap_address_space(limits.malloc_limit_mb)
    paths = [str(p) for p in inputs] or [str(corpus)]
    return [sys.argv[0], *flags(target, limits, work / "artifacts", dictionary), *paths]


def _fork(target: Target, limits: Limits, work: Path, inputs: list[Path]) -> tuple[int, Path]:
    log = work / "logs" / f"{target.name}.log"
    pid = os.fork()
    if pid:
        return pid, log
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        argv = _prepare(target, limits, work, inputs)
    except BaseException:
        traceback.print_exc()
        sys.stderr.write("SETUP FAILED\n")
        sys.stderr.flush()
        os._exit(3)
    atheris.Setup(argv, target.fuzz)
    # Fuzz() ends the process through exit(): libFuzzer's exit handler then reports a crash
    # and writes its input, so nothing here may catch SystemExit or call os._exit.
    atheris.Fuzz()
    raise AssertionError("libFuzzer returned")


def _wait(pid: int, deadline: float | None) -> tuple[int, bool]:
    """(exit status, killed for running past `deadline`)."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        if deadline is not None and time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status), True
        time.sleep(0.05)


def run_target(target: Target, limits: Limits, work: Path, inputs: list[Path]) -> dict[str, Any]:
    started = time.monotonic()
    deadline = None
    if limits.max_time is not None:
        deadline = started + limits.max_time + SETUP_ALLOWANCE + 2 * limits.timeout
    pid, log = _fork(target, limits, work, inputs)
    exit_code, killed = _wait(pid, deadline)
    seconds = time.monotonic() - started
    result = {
        "target": target.name,
        **parse_log(log.read_text(errors="replace"), exit_code, killed),
    }
    result["seconds"] = round(seconds, 1)
    # libFuzzer's figure is whole inputs per whole second of fuzzing (0 under a second);
    # this one counts setup and seeds too, so it is a lower bound.
    result["wall_execs_per_s"] = round(result["inputs"] / seconds) if seconds else None
    result["log"] = str(log)
    return result


def plan_runs(names: list[str], total: int) -> dict[str, int]:
    """Splits `total` inputs over targets by weight."""
    weights = {name: TARGETS[name].weight for name in names}
    whole = sum(weights.values())
    return {name: max(1, round(total * weight / whole)) for name, weight in weights.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--total", type=int, help="inputs over all targets, split by weight")
    budget.add_argument("--runs", type=int, default=2000, help="inputs per target")
    parser.add_argument("--max-time", type=int, help="seconds of fuzzing per target")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), default=[])
    parser.add_argument("--reproduce", type=Path, nargs="+", default=[], help="inputs to run")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument("--malloc-limit-mb", type=int, default=1024)
    parser.add_argument("--seed", type=int, help="libFuzzer's seed (default: random)")
    parser.add_argument("--work-dir", type=Path, help="logs, corpora, artifacts (kept)")
    args = parser.parse_args(argv)

    names = args.target or list(TARGETS)
    if args.reproduce and len(names) != 1:
        parser.error("--reproduce needs exactly one --target")
    runs = plan_runs(names, args.total) if args.total else dict.fromkeys(names, args.runs)
    if args.reproduce:
        runs = dict.fromkeys(names, 1)  # each input once
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="chinwag-fuzz-"))
    for sub in ("logs", "artifacts", "corpus", "scratch"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        limits = Limits(
            runs=runs[name],
            max_time=args.max_time,
            timeout=args.timeout,
            rss_limit_mb=args.rss_limit_mb,
            malloc_limit_mb=args.malloc_limit_mb,
            seed=args.seed,
        )
        results.append(run_target(TARGETS[name], limits, work, args.reproduce))
        shutil.rmtree(work / "scratch" / name, ignore_errors=True)
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    seconds = sum(r["seconds"] for r in results)
    outcomes = [r["outcome"] for r in results]
    summary = {
        "targets": results,
        "total_inputs": sum(r["inputs"] for r in results),
        "seconds": round(seconds, 1),
        "crashes": outcomes.count("crash"),
        "timeouts": outcomes.count("timeout") + outcomes.count("hang"),
        "ooms": outcomes.count("oom"),
        "other_failures": sum(o not in ("ok", "crash", "timeout", "hang", "oom") for o in outcomes),
        "peak_rss_mb": max((r["peak_rss_mb"] or 0) for r in results),
        "work_dir": str(work),
    }
    print(json.dumps(summary, indent=2))
    return 0 if all(o == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
