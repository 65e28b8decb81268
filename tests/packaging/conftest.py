"""The packaged binary and wheel, built once per session by packaging/'s scripts. Tests that
need them are skipped unless CHINWAG_PACKAGING_TESTS=1 (`make test-packaging` sets it): the
binary takes about two minutes to build on two cores, more than the default suite can spend."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.packaging import build_binary, build_wheel, enabled


@pytest.fixture(scope="session")
def chinwag_binary() -> Path:
    if not enabled():
        pytest.skip("the binary is built under `make test-packaging` only")
    return build_binary()


@pytest.fixture(scope="session")
def chinwag_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built in the default suite too: a few seconds, and it shows what a user installs."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))
