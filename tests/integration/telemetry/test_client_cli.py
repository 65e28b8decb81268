"""`chinwag serve --telemetry LEVEL --collector URL` and `chinwag telemetry ...` as real
processes against a real collector: the headless client reports, the view shows what was
sent, CHINWAG_TELEMETRY=off silences it, the dry run writes batches instead of sending,
and opting out deletes the local queue and the collector's rows."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import trio
from harness.collector import RunningCollector, now_ms, running_collector
from harness.processes import Chinwag, ChinwagProcess
from harness.waiting import wait_until

from chat.telemetry import schema

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "chinwag.toml"
    path.write_text("[telemetry]\nheartbeat_seconds = 1\nupload_seconds = 1\n")
    return path


async def serve(chinwag: Chinwag, config: Path, *extra: str) -> ChinwagProcess:
    process = await chinwag.start(
        "--config", str(config), "--profile", "alice", "serve", "--api", "127.0.0.1:0",
        "--listen", "/ip4/127.0.0.1/tcp/0", *extra,
    )  # fmt: skip
    await process.until("ready")
    return process


async def stop(process: ChinwagProcess) -> None:
    process.stop(signal.SIGINT)
    assert await process.wait() == 0, process.stderr


async def telemetry(chinwag: Chinwag, config: Path, *args: str) -> str:
    """In a worker thread: the collector answering it runs on this test's trio loop."""
    command = ("--config", str(config), "--profile", "alice", "telemetry", *args)
    done = await trio.to_thread.run_sync(lambda: chinwag.run(*command))
    assert done.returncode == 0, done.stderr
    return done.stdout


def batches(collector: RunningCollector) -> int:
    return collector.rows()["batches"]


async def test_serve_reports_the_view_shows_it_and_opting_out_deletes_it(
    chinwag: Chinwag, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    chinwag.create_profile("alice")
    async with running_collector(f"sqlite:///{tmp_path / 'collector.sqlite'}") as collector:
        process = await serve(
            chinwag, config, "--telemetry", "health", "--collector", collector.url
        )
        await wait_until(lambda: collector.rows()["heartbeats"] >= 1, 30)
        await stop(process)
        rows = collector.rows()
        assert rows["installs"] == 1 and rows["sessions"] == 2  # its start and its end

        view = json.loads(await telemetry(chinwag, config, "show", "--json"))
        assert view["queued_events"] == 0  # the last flush and upload happened at exit
        assert view["sent_batches"] and all(b["status"] == "sent" for b in view["sent_batches"])
        for sent in view["sent_batches"]:
            batch = schema.check_batch(json.loads(sent["body"]), now_ms=now_ms())
            assert not batch.rejected
            assert {e.type for e in batch.events} <= {"session_start", "heartbeat", "session_end"}
        assert "sent:" in await telemetry(chinwag, config, "status")

        # The kill switch beats the option: nothing recorded, nothing sent.
        before = batches(collector)
        killed = {**chinwag.env(), "CHINWAG_TELEMETRY": "off"}
        chinwag_env = chinwag.env
        chinwag.env = lambda: killed  # type: ignore[method-assign]
        process = await serve(
            chinwag, config, "--telemetry", "reliability", "--collector", collector.url
        )
        await trio.sleep(2.5)  # two upload periods
        await stop(process)
        chinwag.env = chinwag_env  # type: ignore[method-assign]
        assert batches(collector) == before
        assert json.loads(await telemetry(chinwag, config, "show", "--json"))["queued_events"] == 0

        out = await telemetry(chinwag, config, "off")
        assert "the collector deleted what it held" in out
        assert collector.rows()["installs"] == 0 and collector.rows()["events"] == 0
        view = json.loads(await telemetry(chinwag, config, "show", "--json"))
        assert view["install_id"] is None and view["sent_batches"] == []


async def test_the_dry_run_writes_the_batches_instead_of_sending_them(
    chinwag: Chinwag, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    chinwag.create_profile("alice")
    out = tmp_path / "batches.jsonl"
    process = await serve(chinwag, config, "--telemetry", "health", "--telemetry-dry-run", str(out))
    await wait_until(lambda: out.exists() and out.stat().st_size > 0, 30)
    await stop(process)
    lines = out.read_text().splitlines()
    events = []
    for line in lines:
        events += schema.check_batch(json.loads(line), now_ms=now_ms()).events
    assert [e.seq for e in events] == list(range(len(events)))
    assert events[0].type == "session_start" and events[-1].type == "session_end"
    view = json.loads(await telemetry(chinwag, config, "show", "--json"))
    assert {b["status"] for b in view["sent_batches"]} == {"dry_run"}
    assert len(out.read_bytes()) == sum(len(b["body"]) + 1 for b in view["sent_batches"])
