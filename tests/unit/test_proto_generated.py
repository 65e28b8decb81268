"""The committed *_pb2 modules must be exactly what the .proto files generate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_generated_modules_match_their_proto_sources(tmp_path: Path) -> None:
    subprocess.run(
        ["bash", str(REPO / "scripts" / "gen_proto.sh"), str(tmp_path)],
        check=True,
        cwd=REPO,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
    )
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2.py*"))
    assert generated, "no .proto sources found"
    stale = [
        str(rel) for rel in generated if (tmp_path / rel).read_bytes() != (REPO / rel).read_bytes()
    ]
    assert stale == [], f"run `make proto` and commit: {stale}"
