"""The profile-database benchmark runs end to end in a tiny mode (no assertions on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("storage.py")


@pytest.mark.bench
def test_storage_benchmark_smoke(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--messages", "3000", "--inserts", "100", "--runs", "5",
         "--pages-back", "2", "--dir", str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines()]
    metrics = {(r["metric"], r.get("cache")) for r in rows}
    searches = ("rare_word", "vocabulary_word", "frequent_word", "prefix",
                "frequent_word_in_busy_chat")  # fmt: skip
    reads = ("newest_50", "page_2_back", *(f"search_{s}" for s in searches))
    for read in reads:
        assert (read, "cold") in metrics and (read, "warm") in metrics
    assert ("unlock_s", None) in metrics and ("insert_one_tx_each", None) in metrics
    for row in rows:
        if "ratio" in row:
            assert row["ratio"] > 0
    sizes = {r["variant"]: r["bytes"] for r in rows if r["metric"] == "database_bytes"}
    assert sizes["encrypted"] > 0 and sizes["plain"] > 0
