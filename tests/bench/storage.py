"""Storage benchmark: SQLCipher profile vs the same schema in plain stdlib sqlite3.

    python tests/bench/storage.py [--quick] [--messages N]

Builds a profile with 1,000,000 messages across 500 conversations (100,000 with --quick),
one tenth of them in a single busy conversation so that "100 pages back" exists. Measures
unlock, inserting 10k messages (one transaction each, as the messenger does), the newest 50
messages of a conversation (p50/p95), a page 100 pages back, and full-text searches as the
search screen runs them (best 50, with snippets): a rare word (0.1 % of messages), a
vocabulary word (~0.2 %), a frequent word (1 in 7 messages), a prefix, and the frequent word
in the busy conversation alone. Prints one JSON object per line; `ratio` is encrypted/plain
(goal: at most 1.2 on every read).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, this file's directory comes first on sys.path and its name would shadow
# the `storage` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from storage import db as storage_db  # noqa: E402
from storage import migrations  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.kdf import KdfParams  # noqa: E402
from storage.profiles import Profiles  # noqa: E402
from storage.repositories.messages import PageCursor  # noqa: E402
from storage.store import Store  # noqa: E402

CONVERSATIONS = 500
PAGE = 50
PASSPHRASE = "benchmark passphrase"


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "storage", **fields}), flush=True)


def open_plain(path: Path) -> Store:
    """The same schema, pragmas and repositories over stdlib sqlite3 (no encryption)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA cache_size = -{storage_db.CACHE_KIB}")
    migrations.migrate(conn)
    return Store(Database(conn, path), bytes(32))  # type: ignore[arg-type]


def vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(5000)]


def conversation_of(i: int, total: int) -> int:
    """One tenth of all messages in conversation 0, the rest spread evenly."""
    return 0 if i % 10 == 0 else 1 + i % (CONVERSATIONS - 1)


def populate(store: Store, total: int, seed: int) -> None:
    rng = random.Random(seed)
    words = vocabulary(rng)
    db = store.db
    with db.transaction():
        db.executemany(
            "INSERT INTO conversations (id, kind, title, pubsub_topic, content_topic, "
            "created_at, last_activity_at) VALUES (?, 'direct', ?, '/waku/2/rs/42/0', ?, 0, 0)",
            [(f"c{c}", f"chat {c}", f"/chinwag/1/c{c}/proto") for c in range(CONVERSATIONS)],
        )
    batch = 20_000
    for start in range(0, total, batch):
        rows = []
        for i in range(start, min(total, start + batch)):
            body = " ".join(rng.choices(words, k=rng.randint(4, 20)))
            if i % 1000 == 7:
                body += " zebracrossing"  # a rare word: 0.1 % of messages
            if i % 7 == 3:
                body += " weather"  # a frequent word: 1 in 7 messages, in every conversation
            rows.append(
                (i + 1, f"c{conversation_of(i, total)}", f"m{i}", "peer", 0, body, i, "received")
            )
        with db.transaction():
            db.executemany(
                "INSERT INTO messages (id, conversation_id, message_id, sender, outgoing, body, "
                "sent_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.executemany(
                "INSERT INTO message_transitions (message, to_state, at) VALUES (?, ?, ?)",
                [(r[0], "received", r[6]) for r in rows],
            )
    db.checkpoint()


def timings(call: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        out.append(time.perf_counter() - t)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def reads(store: Store, seed: int, runs: int, pages_back: int) -> dict[str, list[float]]:
    rng = random.Random(seed)
    conversations = [f"c{rng.randrange(CONVERSATIONS)}" for _ in range(runs)]
    it = iter(conversations)
    newest = timings(lambda: store.messages.page(next(it), limit=PAGE), runs)
    # The cursor `pages_back` pages back in the busy conversation (finding it is not timed).
    row = store.db.fetchone(
        "SELECT sent_at, id FROM messages WHERE conversation_id = 'c0' "
        "ORDER BY sent_at DESC, id DESC LIMIT 1 OFFSET ?",
        (pages_back * PAGE - 1,),
    )
    assert row is not None, f"the busy conversation has fewer than {pages_back} pages"
    cursor = PageCursor(row[0], row[1])
    back = timings(lambda: store.messages.page("c0", limit=PAGE, before=cursor), runs)
    searches = {
        "search_rare_word": ("zebracrossing", None),
        "search_vocabulary_word": (vocabulary(random.Random(1))[0], None),
        "search_frequent_word": ("weather", None),
        "search_prefix": ("zebra*", None),
        "search_frequent_word_in_busy_chat": ("weather", "c0"),
    }
    found = {
        name: timings(lambda q=query, c=chat: store.messages.search_hits(q, c, PAGE), runs)
        for name, (query, chat) in searches.items()
    }
    return {"newest_50": newest, f"page_{pages_back}_back": back, **found}


def insert_burst(store: Store, count: int, offset: int) -> float:
    t = time.perf_counter()
    for i in range(count):
        store.messages.add(
            conversation_id=f"c{i % CONVERSATIONS}",
            message_id=f"new{offset + i}",
            sender="me",
            outgoing=True,
            body=f"freshly typed message number {i}",
            sent_at=10**12 + i,
            state="queued",
            now=10**12 + i,
        )
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 messages instead of 1M")
    parser.add_argument("--messages", type=int, help="override the message count")
    parser.add_argument("--inserts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200, help="repetitions per read")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temp dir)")
    parser.add_argument(
        "--pages-back", type=int, default=100, help="depth of the keyset-page read (in pages)"
    )
    args = parser.parse_args()
    total = args.messages or (100_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        profiles = Profiles(base / "profiles")
        t = time.perf_counter()
        enc = profiles.create("bench", PASSPHRASE, display_name="Bench", now=0)
        emit(metric="create_profile_s", encrypted=time.perf_counter() - t)
        plain = open_plain(base / "plain.db")
        for name, store in (("encrypted", enc), ("plain", plain)):
            t = time.perf_counter()
            populate(store, total, seed=1)
            emit(metric="populate_s", variant=name, messages=total, s=time.perf_counter() - t)
        enc.close()
        plain.close()

        t = time.perf_counter()
        key = profiles.derive_key("bench", PASSPHRASE)
        kdf_s = time.perf_counter() - t
        t = time.perf_counter()
        enc = profiles.open("bench", key)
        open_s = time.perf_counter() - t
        t = time.perf_counter()
        plain = open_plain(base / "plain.db")
        plain_open_s = time.perf_counter() - t
        params = KdfParams.fresh()
        emit(
            metric="unlock_s",
            encrypted=kdf_s + open_s,
            kdf_s=kdf_s,
            open_s=open_s,
            plain_open_s=plain_open_s,
            opslimit=params.opslimit,
            memlimit=params.memlimit,
        )
        # First pass right after opening: every page is read (and decrypted) for the first time.
        depth = args.pages_back
        cold = {
            "encrypted": reads(enc, 2, args.runs, depth),
            "plain": reads(plain, 2, args.runs, depth),
        }
        # Same queries again: the working set is now in the page cache (the steady state).
        warm = {
            "encrypted": reads(enc, 2, args.runs, depth),
            "plain": reads(plain, 2, args.runs, depth),
        }
        for cache, results in (("cold", cold), ("warm", warm)):
            for metric in results["encrypted"]:
                e, p = results["encrypted"][metric], results["plain"][metric]
                emit(
                    metric=metric,
                    cache=cache,
                    encrypted_p50_ms=statistics.median(e) * 1e3,
                    encrypted_p95_ms=pct(e, 0.95) * 1e3,
                    plain_p50_ms=statistics.median(p) * 1e3,
                    plain_p95_ms=pct(p, 0.95) * 1e3,
                    ratio=statistics.median(e) / statistics.median(p),
                    messages=total,
                )
        ins = {
            "encrypted": insert_burst(enc, args.inserts, 0),
            "plain": insert_burst(plain, args.inserts, 0),
        }
        emit(
            metric="insert_one_tx_each",
            count=args.inserts,
            encrypted_per_s=args.inserts / ins["encrypted"],
            plain_per_s=args.inserts / ins["plain"],
            ratio=ins["encrypted"] / ins["plain"],
        )
        for name, store in (("encrypted", enc), ("plain", plain)):
            files = [store.db.path, Path(f"{store.db.path}-wal")]
            size = sum(f.stat().st_size for f in files if f.exists())
            emit(metric="database_bytes", variant=name, bytes=size, messages=total)
            store.close()


if __name__ == "__main__":
    main()
