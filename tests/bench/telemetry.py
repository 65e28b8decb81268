"""Telemetry collector benchmark: ingestion rate over HTTP and report time, on SQLite and on
PostgreSQL side by side.

    python tests/bench/telemetry.py [--ingest-events N] [--report-events N] [--no-postgres]
                                    [--record-events N] [--only ingest|report|record]

Recording (the client): microseconds per event on the message path (the recorder, the
messenger hook, the event fan-out with and without it) and the writer's cost per event into
a real SQLCipher profile (off the path).

Ingestion: installs upload gzip batches of 500 events (a realistic mix: messages sent and
received, heartbeats) to a collector on loopback (the real HTTP server, validation, one
writer), with the rate limits lifted; events/s from first request to last answer. Report:
a dataset of `--report-events` events (default 1,000,000: groups of 5 installs, each message
received by the others with 97 % probability, heartbeats) written through the store, then
`compute_report` over it. PostgreSQL is the throwaway server of tests/harness/postgres.py
(skipped, with a row saying why, where it cannot start). One JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_TESTS = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(_TESTS))

import trio  # noqa: E402
from harness import postgres  # noqa: E402
from harness.collector import running_collector  # noqa: E402
from harness.telemetry import DAY_MS, HOUR_MS, FakeInstall, conversation, gzip_json  # noqa: E402

from chat.telemetry import identifiers, schema  # noqa: E402
from chat.telemetry.collector.app import CollectorConfig  # noqa: E402
from chat.telemetry.collector.limits import CollectorLimits  # noqa: E402
from chat.telemetry.collector.report import compute_report  # noqa: E402
from chat.telemetry.collector.store import Install, Store  # noqa: E402
from chat.telemetry.collector.tables import open_engine  # noqa: E402

GROUP = 5
BATCH = schema.MAX_EVENTS_PER_BATCH
UNLIMITED = CollectorLimits(
    batches_per_minute=1e9, burst=10**9, events_per_day=10**12, registration_burst=10**6,
    registration_source_burst=10**6, registrations_per_source_per_minute=1e9,
)  # fmt: skip


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "telemetry", **fields}), flush=True)


def now_ms() -> int:
    return int(time.time() * 1000)


def group_traffic(installs: list[FakeInstall], messages: int, rng: random.Random, t0: int) -> None:
    """Fills each install's `pending` with one group's traffic: joins, messages and receipts,
    a heartbeat every 20 events."""
    k_tel, conv = conversation(rng.randbytes(16))
    for install in installs:
        install.pending += [install.start(t0), install.join(t0 + 1, conv)]
    for number in range(messages):
        sender = installs[number % len(installs)]
        sent_at = t0 + 1000 + number * 1000
        message_id = rng.randbytes(8)
        sender.pending.append(sender.sent(sent_at, k_tel, message_id, conv))
        for receiver in installs:
            if receiver is not sender and rng.random() < 0.97:
                delay = int(rng.expovariate(1 / 400))
                receiver.pending.append(
                    receiver.received(sent_at + delay, k_tel, message_id, conv, lat_ms=delay)
                )
        for install in installs:
            if len(install.pending) % 20 == 0:
                install.pending.append(install.heartbeat(sent_at + 1, sent=1, recv=4))
    for install in installs:  # alive a day later: the messages it missed count as lost
        install.pending.append(install.heartbeat(t0 + messages * 1000 + DAY_MS + HOUR_MS))


def dataset(events: int, seed: int = 7) -> list[FakeInstall]:
    """Groups of installs with about `events` events in all (each message makes ~5)."""
    rng = random.Random(seed)
    t0 = now_ms() - 3 * DAY_MS
    installs: list[FakeInstall] = []
    per_group = 600
    groups = max(1, events // (per_group * 5))
    for number in range(groups):
        members = [
            FakeInstall(identifiers.new_id(), "", mode="relay" if k % 2 else "light")
            for k in range(GROUP)
        ]
        group_traffic(members, per_group, rng, t0 + number * 10 * HOUR_MS % DAY_MS)
        installs += members
    return installs


def _batches(install: FakeInstall) -> list[dict[str, Any]]:
    return [
        install.batch(install.pending[i : i + BATCH], sent_at=now_ms())
        for i in range(0, len(install.pending), BATCH)
    ]


async def ingest_over_http(url: str, events: int) -> dict[str, Any]:
    config = CollectorConfig(open_registration=True, limits=UNLIMITED)
    async with running_collector(url, config) as collector:
        installs = dataset(events)
        registered = []
        for install in installs:
            fresh = await collector.register(mode=install.mode)
            fresh.pending = [
                {**e, "sid": fresh.session_id} for e in install.pending
            ]  # same traffic, under the registered id
            registered.append(fresh)
        bodies = [(i.token, gzip_json(b)) for i in registered for b in _batches(i)]
        total = sum(len(i.pending) for i in registered)
        began = time.perf_counter()
        for token, body in bodies:
            answer = await collector.post_batch(token, body, gzip=True)
            assert answer.status_code == 200, answer.text
        elapsed = time.perf_counter() - began
    return {"events": total, "batches": len(bodies), "seconds": round(elapsed, 3),
            "events_per_s": round(total / elapsed)}  # fmt: skip


def report_time(url: str, events: int) -> dict[str, Any]:
    engine = open_engine(url)
    store = Store(engine)
    installs = dataset(events)
    began = time.perf_counter()
    total = 0
    for install in installs:
        install_id, _ = store.register("bench", now_ms())
        owner = Install(install_id, "bench")
        for body in _batches(install):
            body["install_id"] = install_id
            batch = schema.check_batch(body, now_ms=now_ms())
            total += store.ingest(owner, batch, now_ms()).accepted
    load_s = time.perf_counter() - began
    began = time.perf_counter()
    report = compute_report(
        engine, start_ms=now_ms() - 5 * DAY_MS, end_ms=now_ms(), now_ms=now_ms()
    )
    elapsed = time.perf_counter() - began
    engine.dispose()
    overall = report["overall"]
    return {"events": total, "pairs": overall["pairs"], "load_s": round(load_s, 1),
            "store_events_per_s": round(total / load_s), "report_s": round(elapsed, 2),
            "eventual_delivery_known": overall["eventual_delivery_known"]["value"],
            "coverage": overall["eventual_delivery_known"]["coverage"]}  # fmt: skip


class _OneConversation:
    """The bench's stand-in for the messenger's lookups (one 1:1 chat); what is measured is
    the hook and the recorder, which are the real ones."""

    def observe(self, observer: Any) -> None:
        raise NotImplementedError

    def conversation_secret(self, chat_id: str) -> tuple[str, bytes, int] | None:
        return "direct", b"cw1alice\ncw1bob", 2

    async def chats(self) -> list[Any]:
        return []

    async def bandwidth(self) -> Any:
        raise NotImplementedError

    def health(self) -> Any:
        raise NotImplementedError

    def telemetry_figures(self) -> Any:
        from chat.messenger.observed import TelemetryFigures

        return TelemetryFigures()


async def recording_cost(events: int) -> list[dict[str, Any]]:
    """Microseconds per event on the message path: `Recorder.record` alone; the hook on a
    received message (a blinded reference: two HMACs, then `record`); an event fan-out's
    `emit` with and without the hook (what the messenger pays); and, off the path, the
    writer's flush into a real SQLCipher profile per event."""
    from chat import events as ev
    from chat.messenger.context import EventFanOut
    from chat.telemetry import outbox
    from chat.telemetry.client.messenger_hook import MessengerTelemetry
    from chat.telemetry.recorder import Recorder
    from storage.kdf import KdfParams
    from storage.profiles import Profiles

    def fresh() -> Recorder:
        return Recorder(
            "reliability", wall=time.time, monotonic=time.monotonic, max_pending=events + 10
        )

    rows = []
    recorder = fresh()
    fields = {"msg_ref": "0" * 32, "conv_ref": "1" * 32, "via": "relay", "lat_ms": 40,
              "decrypt_ok": True}  # fmt: skip
    began = time.perf_counter()
    for _ in range(events):
        recorder.record("msg_recv", fields)
    rows.append({"metric": "record_us", "call": "Recorder.record", "events": events,
                 "us_per_event": (time.perf_counter() - began) / events * 1e6})  # fmt: skip

    now = time.time()
    messages = [
        ev.MessageAdded(ev.MessageView(f"m{n:08d}", "chat", "cw1bob", "hello", False, now - 0.05,
                                       "received", received_at=now))
        for n in range(events)
    ]  # fmt: skip
    hook = MessengerTelemetry(fresh(), _OneConversation())
    began = time.perf_counter()
    for message in messages:
        hook.observe(message)
    rows.append({"metric": "record_us", "call": "hook.observe(MessageAdded)", "events": events,
                 "us_per_event": (time.perf_counter() - began) / events * 1e6})  # fmt: skip
    assert len(hook.recorder.pending) == events + 1  # + the conversation's join

    for with_hook in (False, True):
        fan_out = EventFanOut()
        subscription = fan_out.subscribe(buffer=events + 10)
        if with_hook:
            fan_out.observers.append(MessengerTelemetry(fresh(), _OneConversation()).observe)
        began = time.perf_counter()
        for message in messages:
            fan_out.emit(message)
        rows.append({"metric": "record_us", "call": "EventFanOut.emit", "telemetry": with_hook,
                     "events": events,
                     "us_per_event": (time.perf_counter() - began) / events * 1e6})  # fmt: skip
        subscription.close()

    with tempfile.TemporaryDirectory() as directory:
        store = Profiles(Path(directory)).create(
            "bench", "bench passphrase", display_name="Bench", now=1,
            kdf=KdfParams.fresh(opslimit=1, memlimit=8192),
        )  # fmt: skip
        taken, _ = hook.recorder.take()
        sid = identifiers.new_id()
        began = time.perf_counter()
        unlimited = outbox.Caps(max_events=10**9, max_bytes=10**12)
        for start in range(0, len(taken), 100):
            outbox.persist(store, taken[start : start + 100], {}, session_id=sid,
                           now_ms=now_ms(), caps=unlimited)  # fmt: skip
        spent = time.perf_counter() - began
        stored_bytes = store.telemetry_outbox.totals()[1]
        rows.append({"metric": "persist_us", "call": "outbox.persist (batches of 100)",
                     "events": len(taken), "us_per_event": spent / len(taken) * 1e6,
                     "bytes_per_event": stored_bytes // len(taken)})  # fmt: skip
        store.close()
    for row in rows:
        row["us_per_event"] = round(row["us_per_event"], 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ingest-events", type=int, default=100_000)
    parser.add_argument("--report-events", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--record-events", type=int, default=100_000)
    parser.add_argument("--only", choices=("ingest", "report", "record"), help="run one part only")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    if args.only in (None, "record"):
        for row in trio.run(recording_cost, args.record_events):
            emit(**row)
        if args.only == "record":
            return
    directory = args.dir or Path(tempfile.mkdtemp(prefix="chinwag-telemetry-bench-"))
    server: postgres.PostgresServer | None = None
    databases: dict[str, Any] = {}
    databases["sqlite"] = lambda name: f"sqlite:///{directory / name}.sqlite"
    if not args.no_postgres:
        try:
            server = postgres.start()
            databases["postgresql"] = lambda name: server.new_database()  # type: ignore[union-attr]
        except postgres.PostgresUnavailable as exc:
            emit(metric="skipped", db="postgresql", reason=str(exc))
    try:
        for db, url in databases.items():
            if args.only in (None, "ingest"):
                result = trio.run(ingest_over_http, url("ingest"), args.ingest_events)
                emit(metric="ingest_http", db=db, **result)
        for db, url in databases.items():
            if args.only in (None, "report"):
                emit(metric="report", db=db, **report_time(url("report"), args.report_events))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
