"""Crash and full-disk behaviour with real processes and real files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.errors import StorageFull, WrongPassphrase
from storage.kdf import KdfParams
from storage.profiles import Profiles
from storage.repositories.conversations import Conversation

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from storage.profiles import Profiles

    store = Profiles(Path(sys.argv[1])).unlock("alice", "pw")
    i = 0
    while True:
        with store.db.transaction():
            rowid = store.messages.add(
                conversation_id="c1", message_id=f"m{i}", sender="me", outgoing=True,
                body=f"burst message {i} " + "x" * 300, sent_at=i, state="queued", now=i,
            )
            store.outbox.enqueue(rowid, pubsub_topic="p", content_topic="c",
                                 payload=b"y" * 200, now=i)
        print(f"m{i}", flush=True)  # only after COMMIT returned
        i += 1
    """
)

REKEYER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from storage.kdf import KdfParams
    from storage.profiles import Profiles

    kill_before = int(sys.argv[2])
    calls = 0
    real_fsync = os.fsync

    def fsync(fd):
        global calls
        calls += 1
        if calls == kill_before:
            os.kill(os.getpid(), signal.SIGKILL)
        real_fsync(fd)

    os.fsync = fsync
    Profiles(Path(sys.argv[1])).change_passphrase(
        "alice", "old", "new", kdf=KdfParams.fresh(opslimit=1, memlimit=8192)
    )
    print("finished", calls, flush=True)
    """
)


def _seed(
    profiles: Profiles, kdf: KdfParams, conversation: Conversation, passphrase: str = "pw"
) -> None:
    store = profiles.create("alice", passphrase, display_name="Alice", now=1, kdf=kdf)
    store.conversations.add(conversation)
    store.close()


def test_sigkill_mid_burst_loses_no_committed_row(
    tmp_path: Path,
    cheap_kdf: Callable[[], KdfParams],
    make_conversation: Callable[..., Conversation],
) -> None:
    profiles = Profiles(tmp_path / "profiles")
    _seed(profiles, cheap_kdf(), make_conversation())
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(profiles.profiles_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    committed = [proc.stdout.readline().strip() for _ in range(300)]
    os.kill(proc.pid, signal.SIGKILL)  # mid-burst: the writer never stops on its own
    rest, _ = proc.communicate()
    committed += rest.split()  # lines flushed before the kill landed are committed too
    assert proc.returncode == -signal.SIGKILL
    store = profiles.unlock("alice", "pw")
    try:
        assert store.db.integrity_check() == ["ok"]
        ids = {r[0] for r in store.db.fetchall("SELECT message_id FROM messages")}
        assert set(committed) <= ids
        assert len(ids) - len(committed) <= 1  # at most the one whose print was cut off
        assert store.db.scalar("SELECT count(*) FROM outbox") == len(ids)
        assert store.db.scalar("SELECT count(*) FROM message_transitions") == len(ids)
    finally:
        store.close()


def test_full_disk_is_a_clear_error_and_loses_nothing(
    tmp_path: Path,
    cheap_kdf: Callable[[], KdfParams],
    make_conversation: Callable[..., Conversation],
) -> None:
    profiles = Profiles(tmp_path / "profiles")
    _seed(profiles, cheap_kdf(), make_conversation())
    store = profiles.unlock("alice", "pw")
    store.db.set_max_pages(store.db.page_count() + 8)
    committed: list[str] = []
    with pytest.raises(StorageFull, match="disk is full") as caught:
        for i in range(10_000):
            store.messages.add(
                conversation_id="c1",
                message_id=f"m{i}",
                sender="me",
                outgoing=True,
                body=f"filling {i} " + "z" * 2000,
                sent_at=i,
                state="queued",
                now=i,
            )
            committed.append(f"m{i}")
    assert "Traceback" not in str(caught.value)
    assert committed, "the cap must leave room for some writes first"
    # A multi-row transaction that hits the cap is rolled back as a whole.
    with pytest.raises(StorageFull), store.db.transaction():
        store.meta.set("half", "written")
        store.db.execute(
            "INSERT INTO telemetry_queue (kind, payload, created_at) VALUES "
            "('big', json_object('x', ?), 1)",
            ("w" * 100_000,),
        )
    assert store.meta.get("half") is None
    store.close()

    store = profiles.unlock("alice", "pw")
    try:
        assert store.db.integrity_check() == ["ok"]
        ids = [r[0] for r in store.db.fetchall("SELECT message_id FROM messages ORDER BY id")]
        assert ids == committed
        store.messages.add(  # with the space back, writing works again
            conversation_id="c1",
            message_id="after",
            sender="me",
            outgoing=True,
            body="after",
            sent_at=0,
            state="queued",
            now=0,
        )
    finally:
        store.close()


def test_passphrase_change_survives_a_kill_at_every_step(
    tmp_path: Path,
    cheap_kdf: Callable[[], KdfParams],
    make_conversation: Callable[..., Conversation],
) -> None:
    script = tmp_path / "rekeyer.py"
    script.write_text(REKEYER)
    outcomes: list[str] = []
    for kill_before in range(1, 20):
        profiles = Profiles(tmp_path / f"run{kill_before}")
        _seed(profiles, cheap_kdf(), make_conversation(), passphrase="old")
        with profiles.unlock("alice", "old") as store:
            store.meta.set("marker", "precious")
        proc = subprocess.run(
            [sys.executable, str(script), str(profiles.profiles_dir), str(kill_before)],
            capture_output=True,
            text=True,
        )
        finished = proc.returncode == 0
        assert finished or proc.returncode == -signal.SIGKILL, proc.stderr
        works = []
        for passphrase in ("old", "new"):
            try:
                store = profiles.unlock("alice", passphrase)
            except WrongPassphrase:
                continue
            try:
                assert store.meta.get("marker") == "precious"
                assert store.db.integrity_check() == ["ok"]
            finally:
                store.close()
            works.append(passphrase)
        assert len(works) == 1, f"kill before fsync {kill_before}: {works} unlock"
        leftovers = sorted(p.name for p in profiles.directory("alice").glob("chinwag-*"))
        assert len(leftovers) <= 2, leftovers  # the current DB (and its WAL) only
        outcomes.append(works[0])
        if finished:
            break
    else:
        raise AssertionError("change_passphrase never finished")
    # The kills landed both before and after the commit point.
    assert outcomes[0] == "old" and outcomes[-1] == "new"
    assert len(outcomes) >= 4, outcomes
