"""Messengers on a fake network with real profile databases (tests/harness/fake_messengers.py).
Request `autojump_clock` in a test to run it in virtual time."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from harness.fake_messengers import Peers
from harness.fake_node import FakeNetwork

from storage.profiles import Profiles


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[Peers]:
    network = FakeNetwork()
    async with trio.open_nursery() as nursery:
        started = Peers(nursery, network, Profiles(tmp_path / "profiles"))
        try:
            yield started
        finally:
            nursery.cancel_scope.cancel()
    for running in started.running.values():
        with contextlib.suppress(Exception):
            running.store.close()
    network.close()
