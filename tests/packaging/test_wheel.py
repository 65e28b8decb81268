"""The wheel (`make wheel`, packaging/build-wheel.sh): it carries every file of chat/, ui/ and
storage/ that git tracks (a new kind of data file left out of pyproject.toml's package-data
would reach users only as a crash), and `pipx install` of it gives a working `chinwag`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from harness.packaging import (
    ROOT,
    PackagedChinwag,
    needs_packaging,
    project_version,
    run_to_end,
)

from chat.config import PASSPHRASE_ENV

PACKAGES = ("chat", "ui", "storage")


def tracked_package_files() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--", *PACKAGES], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {name for name in listed.stdout.splitlines() if (ROOT / name).is_file()}


@pytest.mark.slow
def test_the_wheel_carries_every_tracked_package_file(chinwag_wheel: Path) -> None:
    with zipfile.ZipFile(chinwag_wheel) as wheel:
        names = set(wheel.namelist())
        dist_info = f"chinwag-{project_version()}.dist-info"
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    tracked = tracked_package_files()
    assert {"ui/app.tcss", "storage/migrations/0001_core.sql"} <= tracked
    assert tracked - names == set()
    assert not any(name.startswith(("tests/", "docs/", "packaging/")) for name in names)
    assert "chinwag = chat.cli:main" in entry_points


@pytest.mark.packaging
@needs_packaging
@pytest.mark.slow
async def test_pipx_installs_the_wheel_and_its_chinwag_runs(
    chinwag_wheel: Path, tmp_path: Path
) -> None:
    pipx_env = {
        **os.environ,
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
    }
    pipx_env.pop(PASSPHRASE_ENV, None)
    pipx = [sys.executable, "-m", "pipx", "install", "--python", sys.executable]
    installed = await run_to_end([*pipx, str(chinwag_wheel)], env=pipx_env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    script = tmp_path / "bin" / "chinwag"
    # pipx's own venv for it, not this one.
    assert script.resolve().is_relative_to(tmp_path / "pipx")

    version = await run_to_end([str(script), "--version"])
    assert version.stdout.strip() == f"chinwag {project_version()}"
    usage = await run_to_end([str(script), "--help"])
    assert "profile" in usage.stdout and "node" in usage.stdout

    chinwag = PackagedChinwag(tmp_path / "data", program=(str(script),))
    try:
        chinwag.create_profile("alice")
        node = await chinwag.start_node()
        async with httpx.AsyncClient() as http:
            metrics = await http.get(node.metrics_url)
        assert "chinwag_connected_peers 0" in metrics.text
    finally:
        await chinwag.close()
