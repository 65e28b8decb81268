"""A real full disk: a 1 MiB tmpfs in a private mount namespace (`unshare -rm`), where the
system allows it. The archive raises ArchiveFull, loses nothing, keeps answering queries,
and accepts writes again once space is freed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import hashlib, json, os, sys
from storage.archive import ArchiveFull, ArchiveQuery, ArchiveRecord, SqliteArchive

root = sys.argv[1]
filler = os.path.join(root, "filler")
with open(filler, "wb") as f:
    f.write(b"\0" * 256 * 1024)

def rec(i):
    h = hashlib.sha256(i.to_bytes(8, "big")).digest()
    ts = 1_700_000_000 * 10**9 + i
    return ArchiveRecord(h, "/waku/2/rs/42/0", "/a/1/b/proto", ts, b"x" * 4000)

archive = SqliteArchive(os.path.join(root, "archive.db"))
out = {"full_at": None}
for i in range(10_000):
    try:
        archive.insert(rec(i))
    except ArchiveFull as exc:
        out["full_at"] = i
        break
out["count"] = archive.message_count()
out["rows"] = len(archive.query(ArchiveQuery(limit=1000)))
out["present"] = len(archive.present([rec(i).message_hash for i in range(out["full_at"] or 0)]))
os.remove(filler)  # the operator frees space
out["after_free"] = archive.insert(rec(50_000))
print(json.dumps(out))
"""


def _can_mount_tmpfs(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            'mount -t tmpfs -o size=64k tmpfs "$1"',
            "sh",
            str(tmp_path),
        ],
        capture_output=True,
    )
    return probe.returncode == 0


def test_full_disk_is_a_typed_error_and_the_archive_recovers(tmp_path: Path) -> None:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if not _can_mount_tmpfs(mount_point):
        pytest.skip("cannot mount a private tmpfs here (needs user namespaces)")
    result = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            'mount -t tmpfs -o size=1m tmpfs "$1" && exec "$2" -c "$3" "$1"',
            "sh",
            str(mount_point),
            sys.executable,
            SCRIPT,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    out = json.loads(result.stdout)
    assert out["full_at"] is not None and out["full_at"] > 0
    # Nothing stored before the disk filled up was lost, and queries still work.
    assert out["count"] == out["rows"] == out["present"] == out["full_at"]
    assert out["after_free"] is True
