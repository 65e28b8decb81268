from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from harness.light_network import LightNet
from harness.processes import Chinwag

from storage.profiles import Profiles


@pytest.fixture
async def light_net(tmp_path: Path) -> AsyncIterator[LightNet]:
    async with trio.open_nursery() as nursery:
        network = LightNet(nursery, tmp_path, Profiles(tmp_path / "profiles"))
        try:
            yield network
        finally:
            network.close()


@pytest.fixture
async def chinwag(tmp_path: Path) -> AsyncIterator[Chinwag]:
    runner = Chinwag(tmp_path / "data")
    try:
        yield runner
    finally:
        with trio.CancelScope(shield=True):
            await runner.close()
