from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from harness.light_network import LightNet

from storage.profiles import Profiles


@pytest.fixture
async def light_net(tmp_path: Path) -> AsyncIterator[LightNet]:
    async with trio.open_nursery() as nursery:
        network = LightNet(nursery, tmp_path, Profiles(tmp_path / "profiles"))
        try:
            yield network
        finally:
            network.close()
