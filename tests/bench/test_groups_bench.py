"""The private-group benchmark runs end to end in its quick mode: every line is there with
its fields and sane values (never an assertion on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).with_name("groups.py")


def lines_of(out: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for line in out.splitlines():
        record = json.loads(line)
        found.setdefault(record["bench"], []).append(record)
    return found


def assert_latencies(line: dict[str, Any], *prefixes: str) -> None:
    for prefix in prefixes:
        p50, p99, top = (line[f"{prefix}{k}_ms"] for k in ("p50", "p99", "max"))
        assert 0 < p50 <= p99 <= top, (prefix, line)


@pytest.mark.bench
@pytest.mark.slow
def test_groups_benchmark_smoke() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    found = lines_of(out)
    assert [len(found[k]) for k in ("groups_setup", "groups_done")] == [2, 1]

    group = found["groups_send_to_displayed"][0]
    assert group["displayed"] == group["expected"] == 6 * 2  # 6 messages, 2 other members
    assert group["delivered"] == 6 and group["all_delivered"]
    assert_latencies(group, "", "all_members_", "delivered_")

    fanout = found["groups_direct_fanout"][0]
    assert fanout["displayed"] == fanout["expected"] == 2 * 2  # 2 rounds, 2 contacts
    assert fanout["all_delivered"]
    assert_latencies(fanout, "", "all_members_", "delivered_")

    plain = found["groups_plain_relay"][0]
    assert plain["arrived"] == plain["expected"] == 6 * 2  # every publish at every other node
    assert_latencies(plain, "", "all_members_")
    for line in (group, fanout, plain):
        relay = line["relay"]
        assert relay["service_send_queue_drops"] == relay["members_inbox_drops"] == 0, line
        assert relay["members_relay_received"] >= line["expected"], line

    wire = found["groups_bytes_on_wire"][0]
    plaintext = wire["plaintext_bytes"]
    # Encrypted, with its SDS history: larger than the text, far below a WakuMessage's limit.
    assert plaintext < wire["group_sds_frame_bytes_median"] < wire["group_envelope_bytes_median"]
    assert wire["group_envelope_bytes_median"] < 150 * 1024
    assert wire["group_shares_per_envelope"] == 0  # warmed up: every key is held already
    for part in ("group_per_message", "direct_fanout_per_round", "plain_relay_per_message"):
        figures = wire[part]
        # Every copy crossed a socket: at least the envelope to the service node and back out.
        assert figures["tcp_bytes"] > wire["group_envelope_bytes_median"], part
        assert figures["tcp_bytes_written_by_service"] > 0, part
        assert figures["relay_frames"] >= 2, part
    # One relay publish of the same bytes costs less than the group's message with its
    # acknowledgements, which costs less than sending it 1:1 to each member.
    group_bytes = wire["group_per_message"]["relay_frame_bytes"]
    assert wire["plain_relay_per_message"]["relay_frame_bytes"] < group_bytes
    assert group_bytes < wire["direct_fanout_per_round"]["relay_frame_bytes"]

    rotation = found["groups_key_rotation"][0]
    assert rotation["members"] == 4 and rotation["messages_per_round"] == 3
    assert rotation["steady_shares_per_envelope"] == 0
    # The removal's frame carries the admin's new key for each of the 2 remaining others and
    # the removal for the removed member; each remaining member's next message a new key.
    assert rotation["removal_frame_shares_per_envelope"] == 3
    assert rotation["rotation_shares_per_envelope"] > 0
    assert rotation["rotation_envelope_bytes_max"] > rotation["steady_envelope_bytes_max"]
    assert rotation["rotation_bytes_per_share_median"] > 0
    assert rotation["removed_member_texts_displayed_after"] == 0
    assert rotation["removed_member_undecryptable"] >= 3  # every message after the removal
    assert_latencies(rotation, "steady_all_members_", "rotation_all_members_")
