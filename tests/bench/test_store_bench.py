"""The store benchmark runs end to end in a tiny mode (no assertions on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from harness.archives import ArchiveBackend

SCRIPT = Path(__file__).with_name("store.py")


@pytest.mark.bench
def test_store_benchmark_smoke(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--messages",
            "2000",
            "--repeat",
            "5",
            "--dir",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    measured = {(r["query"], r["backend"]) for r in lines if r["p50_ms"] is not None}
    for query in ("presence_50_hashes", "range_1h_10_topics_first_page_100", "insert_single"):
        assert (query, "chinwag-sqlite") in measured
    assert any(q.startswith("deep_page_") for q, _ in measured)
    assert ("range_1h_10_topics_first_page_100", "naive-sqlite") in measured
    for r in lines:
        assert {"query", "p50_ms", "p95_ms", "archive_messages"} <= r.keys()
        assert r["archive_messages"] >= 2000


@pytest.mark.bench
def test_store_benchmark_smoke_on_postgresql(
    tmp_path: Path, postgres_archive_backend: ArchiveBackend
) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--messages", "2000", "--repeat", "5", "--dir",
         str(tmp_path), "--postgres", postgres_archive_backend.location("bench")],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout  # fmt: skip
    lines = [json.loads(line) for line in out.splitlines()]
    measured = {(r["query"], r["backend"]) for r in lines if r["p50_ms"] is not None}
    for query in ("presence_50_hashes", "hash_lookup_10_with_data", "insert_single"):
        assert (query, "chinwag-postgresql") in measured
    sizes = [r for r in lines if r["query"] == "archive_size"]
    assert {r["backend"] for r in sizes} == {"chinwag-sqlite", "chinwag-postgresql"}
    postgres = next(r for r in sizes if r["backend"] == "chinwag-postgresql")
    assert postgres["archive_messages"] >= 2000 and postgres["partitions"] > 100
