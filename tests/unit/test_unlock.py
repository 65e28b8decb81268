"""The advisory profile lock: one chinwag process per profile at a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chat.errors import UserError
from chat.session import LOCK_FILE_NAME, profile_lock


def test_a_second_holder_gets_a_sentence_and_the_lock_frees_on_exit(tmp_path: Path) -> None:
    with profile_lock(tmp_path, "alice"):
        with pytest.raises(UserError) as refused, profile_lock(tmp_path, "alice"):
            pass  # pragma: no cover - never entered
        assert str(refused.value) == (
            "profile 'alice' is in use by another chinwag process; quit that one first."
        )
    with profile_lock(tmp_path, "alice"):  # released: free again
        pass
    assert (tmp_path / LOCK_FILE_NAME).stat().st_mode & 0o777 == 0o600


def test_the_lock_holds_across_processes(tmp_path: Path) -> None:
    other = (
        "import sys\n"
        "from pathlib import Path\n"
        "from chat.errors import UserError\n"
        "from chat.session import profile_lock\n"
        "try:\n"
        "    with profile_lock(Path(sys.argv[1]), 'alice'):\n"
        "        print('entered')\n"
        "except UserError as exc:\n"
        "    print(exc)\n"
    )
    with profile_lock(tmp_path, "alice"):
        held = subprocess.run(
            [sys.executable, "-c", other, str(tmp_path)], capture_output=True, text=True
        )
    assert held.stdout.strip().endswith("in use by another chinwag process; quit that one first.")
    free = subprocess.run(
        [sys.executable, "-c", other, str(tmp_path)], capture_output=True, text=True
    )
    assert free.stdout.strip() == "entered"


def test_a_missing_profile_directory_is_a_sentence(tmp_path: Path) -> None:
    missing = tmp_path / "ghost"
    with (
        pytest.raises(UserError, match="there is no profile named 'ghost'"),
        profile_lock(missing, "ghost"),
    ):
        pass  # pragma: no cover - never entered
