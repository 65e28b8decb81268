"""The TUI benchmark runs end to end in a tiny mode (no assertions on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("tui.py")


@pytest.mark.bench
def test_tui_benchmark_smoke(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--messages", "600", "--big", "300",
         "--chats", "3", "--opens", "2", "--presses", "4", "--dir", str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout  # fmt: skip
    rows = {row["metric"]: row for row in map(json.loads, out.splitlines())}
    assert rows["launch_to_chat_list_s"]["value"] > 0
    assert rows["open_conversation_ms"]["loaded"] == 60  # one page, not the whole chat
    assert rows["keypress_ms"]["arrived_during"] > 0  # Bob's messages really arrived
    assert rows["rss_mb"]["value"] > 0 and "p95" in rows["keypress_ms"]
