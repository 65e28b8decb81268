"""The service node's container file (packaging/container/Containerfile): hadolint passes it,
it runs as a user other than root with its data in a volume, its health check reads the
metrics endpoint its command opens, its command is one `chinwag node` starts with, and it
copies only what its ignore file lets into the build. Building and running the image needs a
container engine: that test runs under `make test-packaging` where one answers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from harness.packaging import PACKAGING, ROOT, needs_packaging, run_to_end, service_config_of
from harness.waiting import wait_until

CONTAINER = PACKAGING / "container"
CONTAINERFILE = CONTAINER / "Containerfile"
HEALTH_LIMIT = 180.0


def hadolint() -> str | None:
    """The test extras' hadolint (in this venv, which need not be on PATH), else PATH's."""
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = pending + line
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        found.append((keyword.upper(), arguments.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(CONTAINERFILE)
    start = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[start:]


def only(keyword: str) -> str:
    [arguments] = [args for key, args in final_stage() if key == keyword]
    return arguments


def copies() -> list[tuple[str, str]]:
    """(source, destination) of every COPY from the build context (not --from a stage)."""
    pairs = []
    for keyword, arguments in instructions(CONTAINERFILE):
        words = arguments.split()
        if keyword == "COPY" and not words[0].startswith("--from"):
            pairs += [(source, words[-1]) for source in words[:-1]]
    return pairs


@pytest.mark.skipif(hadolint() is None, reason="hadolint is not installed")
def test_hadolint_passes_the_containerfile() -> None:
    settings = CONTAINER / "hadolint.yaml"
    linted = subprocess.run(
        [str(hadolint()), "--no-color", "--config", str(settings), str(CONTAINERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_node_runs_as_a_user_other_than_root_with_its_data_in_a_volume() -> None:
    user = only("USER").split(":")[0]
    assert user not in ("root", "0")
    assert "/var/lib/chinwag" in json.loads(only("VOLUME"))


def test_its_command_is_a_service_node_whose_metrics_the_health_check_reads(
    tmp_path: Path,
) -> None:
    command = json.loads(only("ENTRYPOINT")) + json.loads(only("CMD"))
    assert command[0] == "chinwag"
    copied = {destination: ROOT / source for source, destination in copies()}
    service, config = service_config_of(command[1:], copied, tmp_path / "volume")
    assert config.config_file == ROOT / "packaging/systemd/config.toml"
    assert service.store is not None and service.filter and service.lightpush
    assert service.metrics is not None
    host, port = service.metrics
    health = only("HEALTHCHECK")
    assert f"http://{host}:{port}/metrics" in health


def test_it_copies_only_what_its_ignore_file_lets_in() -> None:
    ignore = (CONTAINER / "Containerfile.dockerignore").read_text().splitlines()
    allowed = [line[1:] for line in ignore if line.startswith("!")]
    assert "*" in ignore  # everything else stays out (.venv, node_modules, dist, ...)
    for source, _ in copies():
        assert (ROOT / source).exists(), source
        assert any(source.rstrip("/") == a or source.startswith(f"{a}/") for a in allowed), source


def container_engine() -> str | None:
    """docker or podman, where its engine answers (here the docker client has none)."""
    for engine in ("docker", "podman"):
        if shutil.which(engine) is None:
            continue
        answered = subprocess.run([engine, "info"], capture_output=True, timeout=30, check=False)
        if answered.returncode == 0:
            return engine
    return None


@pytest.mark.packaging
@needs_packaging
@pytest.mark.slow
@pytest.mark.skipif(container_engine() is None, reason="no container engine answers here")
async def test_the_image_builds_and_its_node_becomes_healthy() -> None:
    engine = container_engine()
    assert engine is not None
    tag = f"chinwag-node-test:{uuid.uuid4().hex[:8]}"
    name = tag.replace(":", "-")
    build = [engine, "build", "-f", str(CONTAINERFILE), "-t", tag]
    if engine == "podman":
        build += ["--ignorefile", str(CONTAINER / "Containerfile.dockerignore")]
    built = await run_to_end([*build, str(ROOT)])
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    try:
        started = await run_to_end(
            [engine, "run", "-d", "--name", name, "--health-interval", "2s", tag]
        )
        assert started.returncode == 0, started.stderr

        async def healthy() -> bool:
            inspect = [engine, "inspect", "--format", "{{.State.Health.Status}}", name]
            return (await run_to_end(inspect)).stdout.strip() == "healthy"

        await wait_until(healthy, HEALTH_LIMIT, what="the container's health check to pass")
        user = await run_to_end([engine, "exec", name, "id", "-u"])
        assert user.returncode == 0 and user.stdout.strip() != "0", user
    finally:
        await run_to_end([engine, "rm", "-f", name])
        await run_to_end([engine, "rmi", "-f", tag])


def test_the_image_carries_the_postgresql_driver_for_a_shared_archive() -> None:
    """`chinwag node --archive postgresql://…` needs psycopg: the wheels stage builds the
    postgres extra, and the runtime installs every wheel it built."""
    built = [
        args for key, args in instructions(CONTAINERFILE) if key == "RUN" and "pip wheel" in args
    ]
    assert len(built) == 1 and '".[postgres]"' in built[0]
    assert any("/tmp/wheels/*.whl" in args for key, args in final_stage() if key == "RUN")
