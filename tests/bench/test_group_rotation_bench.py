"""The key-rotation benchmark runs end to end in its quick mode (5 members on the in-process
network): every line is there, and what the rotation must do holds (never an assertion on
time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).with_name("group_rotation.py")


def lines_of(out: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Each phase's line, and the warm-up rounds' lines (one a round)."""
    found: dict[str, dict[str, Any]] = {}
    rounds: list[dict[str, Any]] = []
    for line in out.splitlines():
        record = json.loads(line)
        if record["bench"] == "group_rotation_warm_up":
            rounds.append(record)
            continue
        assert record["bench"] not in found, record
        found[record["bench"]] = record
    return found, rounds


@pytest.mark.bench
@pytest.mark.slow
def test_group_rotation_benchmark_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        check=True,
        capture_output=True,
        text=True,
        timeout=240,
    ).stdout
    found, rounds = lines_of(out)
    assert set(found) == {
        "group_rotation_setup",
        "group_rotation_steady",
        "group_rotation_removal",
        "group_rotation_round",
        "group_rotation_removed_member",
        "group_rotation_done",
    }
    assert found["group_rotation_setup"]["members"] == 5
    # The keys went out with the first round; the last round needed none.
    assert rounds[0]["shares_per_envelope"] > 0 and rounds[-1]["shares_per_envelope"] == 0
    for warm_up in rounds:
        assert warm_up["displayed"] == warm_up["expected"] == 5 * 4 and warm_up["all_delivered"]

    steady = found["group_rotation_steady"]
    assert steady["messages"] == 4 and steady["all_delivered"]
    assert steady["shares_per_envelope"] == 0  # every key in place: no share
    assert steady["group_publishes"] >= steady["messages"]
    assert steady["bytes_to_every_node"] == steady["published_bytes"] * 4  # 5 nodes

    removal = found["group_rotation_removal"]
    # A new session: its key for each of the 3 other remaining members, and the removal
    # for the removed one; all of it counted for the admin's own tasks.
    assert removal["removal_frame_envelopes"] == 1
    assert removal["removal_frame_shares_per_envelope"] == 4
    assert removal["removal_frame_envelope_bytes_median"] > steady["envelope_bytes_median"]
    assert removal["removal_frame_share_bytes_per_envelope_median"] > 0
    assert removal["removal_frame_seal_cpu_p50_ms"] > 0
    assert 0 < removal["remover_command_cpu_ms"] <= removal["remover_cpu_whole_rotation_ms"]
    assert removal["remover_cpu_until_frame_published_ms"] > 0
    assert removal["delivered"] and removal["readable_everywhere_ms"] > 0
    assert removal["open_with_share_cpu_p50_ms"] > 0  # each receiver took its new key
    assert removal["cpu_per_receiver_p50_ms"] > 0

    rotating = found["group_rotation_round"]
    # Each of the 3 other remaining members rotates: its key for the 3 others.
    assert rotating["messages"] == 3 and rotating["all_delivered"]
    assert rotating["shares_per_envelope"] == 3
    assert rotating["envelope_bytes_median"] > steady["envelope_bytes_median"]
    assert rotating["published_bytes"] > 0

    removed = found["group_rotation_removed_member"]
    assert removed["texts_displayed_after_removal"] == 0
    assert removed["undecryptable_after_removal"] >= 4  # the removal frame and the 3 texts
