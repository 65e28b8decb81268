"""`CHINWAG_TELEMETRY=off` beats `chinwag telemetry off` too: the local queue is deleted (the
person asked), but nothing is sent, not even the deletion request (docs/telemetry.md,
"Consent"); the request waits for a start without the kill switch."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from harness.canned_http import canned_http, http_answer
from harness.processes import PASSPHRASE, Chinwag

from storage.kdf import KdfParams
from storage.profiles import Profiles


def test_the_kill_switch_keeps_the_deletion_request_here(
    tmp_path: Path, cheap_kdf: Callable[[], KdfParams]
) -> None:
    chinwag = Chinwag(tmp_path / "data")
    profiles = Profiles(tmp_path / "data" / "profiles")
    with canned_http(http_answer(200, b'{"deleted": 3}')) as collector:
        store = profiles.create(
            "alice", PASSPHRASE, display_name="Alice", now=1_000, kdf=cheap_kdf()
        )
        store.telemetry_outbox.set_state(
            {"install_id": "i" * 22, "token": "t" * 32, "collector": collector.url}
        )
        store.close()
        env = {**chinwag.env(), "CHINWAG_TELEMETRY": "off"}
        done = chinwag.run("--profile", "alice", "telemetry", "off", env=env)
        assert done.returncode == 0, done.stderr
        assert collector.requests == 0
    assert "CHINWAG_TELEMETRY=off" in done.stdout
    store = profiles.unlock("alice", PASSPHRASE)
    try:
        request = json.loads(store.telemetry_outbox.state()["delete_request"])
        assert request["collector"] == collector.url
    finally:
        store.close()
