"""A slow, lossy link for black-box tests: delay ± jitter and random loss on the egress of one
device inside a network namespace, exactly where `tc qdisc add dev DEV root netem` acts.

Two backends, the first that works:
- `netem`: `tc netem delay D J loss L%` (the kernel's sch_netem).
- `netfilter`, for kernels built without sch_netem (such as the Firecracker VMs our CI runs
  on): in the namespace's iptables OUTPUT chain for `-o DEV`, a `statistic --mode random`
  DROP for the loss, then an NFQUEUE rule whose packets our own delayer
  (tests/harness/netem_fallback.py, started inside the namespace) lets go after the jittered
  delay. Same place, same distribution (uniform jitter, independent loss), same reordering.

Only the device's egress is impaired, as netem on that device would: for a client's data
link that is everything the client sends (its data, and its TCP acknowledgements of what it
receives), so every exchange over the link pays the delay once per round trip and may lose
its client-side half. `Unavailable` says why neither backend can run here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from harness.netns import run

DELAYER = Path(__file__).with_name("netem_fallback.py")


class Unavailable(Exception):
    """Neither tc netem nor iptables + NFQUEUE works here; the message says why."""


@dataclass(frozen=True)
class LinkImpairment:
    delay_ms: int
    jitter_ms: int
    loss_percent: float

    def netem_args(self) -> list[str]:
        return ["delay", f"{self.delay_ms}ms", f"{self.jitter_ms}ms",
                "loss", f"{self.loss_percent}%"]  # fmt: skip


def iptables_command() -> str | None:
    """The legacy backend when installed (it needs nothing of nftables), else `iptables`."""
    for name in ("iptables-legacy", "iptables"):
        if shutil.which(name):
            return name
    return None


@dataclass
class Impaired:
    backend: str
    """`netem` or `netfilter`."""
    delayer_log: Path | None = None

    @property
    def delayer_report(self) -> str:
        return self.delayer_log.read_text(errors="replace") if self.delayer_log else ""


def _try_netem(namespace: str, device: str, spec: LinkImpairment) -> str | None:
    if shutil.which("tc") is None:
        return "the `tc` tool is not installed"
    added = run("ip", "netns", "exec", namespace, "tc", "qdisc", "add", "dev", device, "root",
                "netem", *spec.netem_args())  # fmt: skip
    return None if added.returncode == 0 else added.stderr.strip()


@asynccontextmanager
async def impaired(
    namespace: str, device: str, spec: LinkImpairment, *, log_dir: Path, queue: int = 0
) -> AsyncIterator[Impaired]:
    """Impair `device`'s egress in `namespace` while inside; everything is removed after."""
    netem_refused = _try_netem(namespace, device, spec)
    if netem_refused is None:
        try:
            yield Impaired("netem")
        finally:
            run("ip", "netns", "exec", namespace, "tc", "qdisc", "del", "dev", device, "root")
        return
    iptables = iptables_command()
    if iptables is None:
        raise Unavailable(
            f"tc netem is not available ({netem_refused}) and iptables, the fallback, is not "
            "installed (scripts/setup.sh --test installs it as root with apt-get)"
        )
    in_ns = ("ip", "netns", "exec", namespace)
    log = log_dir / f"delayer-{namespace}-{device}.txt"
    with log.open("wb") as err:
        delayer = await trio.lowlevel.open_process(
            [*in_ns, sys.executable, str(DELAYER), "--queue", str(queue),
             "--delay-ms", str(spec.delay_ms), "--jitter-ms", str(spec.jitter_ms)],
            stdout=subprocess.PIPE, stderr=err,
        )  # fmt: skip
    rules: list[Sequence[str]] = []
    try:
        assert delayer.stdout is not None
        ready = b""
        with trio.move_on_after(15):
            ready = await delayer.stdout.receive_some(64)
        if not ready.startswith(b"ready"):
            raise Unavailable(f"the NFQUEUE delayer did not start: {log.read_text().strip()}")
        loss = ["-o", device, "-m", "statistic", "--mode", "random",
                "--probability", f"{spec.loss_percent / 100}", "-j", "DROP"]  # fmt: skip
        delay = ["-o", device, "-j", "NFQUEUE", "--queue-num", str(queue)]
        for rule in (loss, delay) if spec.loss_percent else (delay,):
            added = run(*in_ns, iptables, "-A", "OUTPUT", *rule)
            if added.returncode != 0:
                raise Unavailable(f"{iptables} refused {' '.join(rule)}: {added.stderr.strip()}")
            rules.append(rule)
        yield Impaired("netfilter", log)
        if delayer.returncode is not None:
            raise AssertionError(f"the delayer died during the test: {log.read_text()}")
    finally:
        for rule in reversed(rules):
            run(*in_ns, iptables, "-D", "OUTPUT", *rule)
        if delayer.returncode is None:
            delayer.terminate()
            with trio.move_on_after(10):
                await delayer.wait()
        if delayer.returncode is None:
            delayer.kill()
            await delayer.wait()
