"""A real reliability report from real clients: the whole telemetry chain as a QA run uses it.

Starts `chinwag collector serve` (SQLite in a temp dir, one cohort code), a `chinwag node
--store` service node and three `chinwag serve --telemetry reliability --collector URL
--cohort CODE` clients (heartbeat and upload every 2 s through the config's `[telemetry]`
table). Over their REST APIs the three become contacts (alice-bob, alice-carol, bob-carol)
and send `--messages` 1:1 messages round the three chats; then carol is frozen (SIGSTOP) for
`--pause` seconds while alice and bob send her `--while-stopped` messages each, and thawed
(SIGCONT): those arrive late, by relay or store catch-up (eventually delivered, not real
time). Every client quits cleanly (its last heartbeat and upload), the collector stops, and
`chinwag collector report --db ... --json --html FILE` computes the report.

Prints JSON lines: the run's setup, then the headline figures (eventual delivery known and
lower bound with coverage, real-time delivery, latency p50/p90/p99, send and end-to-end
confirmation, telemetry's own loss). `--html FILE` keeps the page (else it is written in the
temp dir and deleted). Never asserts on time.

    python tests/bench/telemetry_report_run.py [--messages N] [--pause S] [--quick] [--html FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(REPO))  # this folder's storage.py must not hide the storage package
sys.path.append(str(REPO / "tests"))

import httpx  # noqa: E402
import trio  # noqa: E402
from harness.processes import Chinwag, ChinwagProcess  # noqa: E402
from harness.waiting import wait_until  # noqa: E402

COHORT_CODE = "qa-run-code"
COHORT = "qa-run"
PERIOD_S = 2
NAMES = ("alice", "bob", "carol")


class Client:
    """One `chinwag serve` with telemetry, driven over its REST API."""

    def __init__(self, name: str, process: ChinwagProcess, fields: dict[str, str]) -> None:
        self.name = name
        self.process = process
        self.http = httpx.AsyncClient(
            base_url=fields["api"],
            headers={"Authorization": f"Bearer {fields['token']}"},
            timeout=30,
        )

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return None if response.status_code == 204 else response.json()

    async def texts(self, chat_id: str) -> set[str]:
        page = await self.call("GET", f"/v1/chats/{chat_id}/messages", params={"limit": 200})
        return {m["text"] for m in page}


async def start_collector(chinwag: Chinwag, db_url: str) -> tuple[ChinwagProcess, str]:
    process = await chinwag.start(
        "collector", "serve", "--listen", "127.0.0.1:0", "--db", db_url,
        "--cohort", f"{COHORT_CODE}={COHORT}", "--batches-per-minute", "600",
    )  # fmt: skip
    url = ""
    for line in await process.until("ready"):
        if line.startswith("collector "):
            url = line.removeprefix("collector ")
    assert url, process.stderr
    return process, url


async def start_client(chinwag: Chinwag, config: Path, name: str, peer: str, url: str) -> Client:
    process = await chinwag.start(
        "--config", str(config), "--profile", name, "serve", "--api", "127.0.0.1:0",
        "--listen", "/ip4/127.0.0.1/tcp/0", "--peer", peer,
        "--telemetry", "reliability", "--collector", url, "--cohort", COHORT_CODE,
    )  # fmt: skip
    fields: dict[str, str] = {}
    for line in (await process.until("ready"))[:-1]:
        key, _, value = line.partition(": ")
        fields.setdefault(key, value)
    return Client(name, process, fields)


async def befriend(asker: Client, answerer: Client) -> str:
    """`asker` sends a contact request over the API, `answerer` accepts it; their chat id."""
    asker_key = (await asker.call("GET", "/v1/identity"))["chat_key"]
    link = (await answerer.call("GET", "/v1/identity"))["contact_link"]
    await asker.call("POST", "/v1/contacts", json={"link": link, "message": "hello"})

    async def received() -> bool:
        contacts = await answerer.call("GET", "/v1/contacts")
        return any(c["chat_key"] == asker_key for c in contacts)

    await wait_until(received, 60, what=f"{answerer.name} to get {asker.name}'s request")
    accepted = await answerer.call("POST", f"/v1/contacts/{asker_key}/accept")
    chat_id: str = accepted["chat_id"]

    async def mutual() -> bool:
        return any(c["state"] == "mutual" and c["chat_id"] == chat_id
                   for c in await asker.call("GET", "/v1/contacts"))  # fmt: skip

    await wait_until(mutual, 60, what=f"{asker.name} to see {answerer.name} accept")
    return chat_id


async def wait_delivered(receiver: Client, chat_id: str, texts: set[str], limit: float) -> None:
    async def arrived() -> bool:
        return texts <= await receiver.texts(chat_id)

    await wait_until(arrived, limit, what=f"{receiver.name} to receive {len(texts)} messages")


async def run_clients(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    chinwag = Chinwag(work / "data")
    config = work / "chinwag.toml"
    config.write_text(f"[telemetry]\nheartbeat_seconds = {PERIOD_S}\nupload_seconds = {PERIOD_S}\n")
    db_url = f"sqlite:///{work / 'collector.sqlite'}"
    started = time.monotonic()
    try:
        collector, url = await start_collector(chinwag, db_url)
        node = await chinwag.start_node()
        for name in NAMES:
            await trio.to_thread.run_sync(chinwag.create_profile, name)
        alice, bob, carol = [await start_client(chinwag, config, n, node.addr, url) for n in NAMES]
        await node.wait_for_mesh(3)
        chats = {
            ("alice", "bob"): await befriend(alice, bob),
            ("alice", "carol"): await befriend(alice, carol),
            ("bob", "carol"): await befriend(bob, carol),
        }
        clients = {"alice": alice, "bob": bob, "carol": carol}
        pairs = list(chats)
        expected: dict[tuple[str, str], set[str]] = {}  # (receiver, chat id) -> texts
        for index in range(args.messages):
            first, second = pairs[index % len(pairs)]
            sender, receiver = (first, second) if index % 2 == 0 else (second, first)
            text = f"message {index} from {sender}"
            await clients[sender].call(
                "POST", f"/v1/chats/{chats[first, second]}/messages", json={"text": text}
            )
            expected.setdefault((receiver, chats[first, second]), set()).add(text)
            await trio.sleep(args.gap)
        for (receiver, chat_id), texts in expected.items():
            await wait_delivered(clients[receiver], chat_id, texts, 60)

        # Carol freezes (a laptop lid closed, a process stopped): no heartbeat, no receipt.
        carol.process.stop(signal.SIGSTOP)
        late: dict[str, set[str]] = {}
        for index in range(args.while_stopped):
            for sender in ("alice", "bob"):
                chat_id = chats[sender, "carol"]
                text = f"late {index} from {sender}"
                await clients[sender].call(
                    "POST", f"/v1/chats/{chat_id}/messages", json={"text": text}
                )
                late.setdefault(chat_id, set()).add(text)
            await trio.sleep(args.gap)
        await trio.sleep(args.pause)
        carol.process.stop(signal.SIGCONT)
        for chat_id, texts in late.items():
            await wait_delivered(carol, chat_id, texts, 120)
        # Receipts and confirmations settle, heartbeats cover the last sends, then a clean quit
        # (its last heartbeat, flush and upload).
        await trio.sleep(3 * PERIOD_S)
        for client in (alice, bob, carol):
            client.process.stop(signal.SIGINT)
        for client in (alice, bob, carol):
            code = await client.process.wait(60)
            assert code == 0, client.process.stderr
            await client.http.aclose()
        collector.stop(signal.SIGINT)
        await collector.wait(30)
        node.process.stop(signal.SIGINT)
        await node.process.wait(30)
    finally:
        with trio.CancelScope(shield=True):
            await chinwag.close()
    return {
        "db_url": db_url,
        "run_s": round(time.monotonic() - started, 1),
        "messages": args.messages + 2 * args.while_stopped,
        "chinwag": chinwag,
    }


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The overall figures, each rate whole (value, n, coverage, provisional as the report
    gives them), the biased receiver-relative index beside them, and telemetry's own loss."""
    overall = report["overall"]
    keys = (
        "pairs", "delivered_rt", "delivered_60s", "delivered", "lost", "unknown",
        "eventual_delivery_known", "eventual_delivery_lower_bound", "realtime_delivery_online",
        "latency_ms", "sent", "send_accepted", "send_confirmation", "e2e_confirmation",
        "gap_rate", "recovery_rate",
    )  # fmt: skip
    figures: dict[str, Any] = {key: overall[key] for key in keys}
    figures["receiver_relative_index_biased"] = report["receiver_relative_index_biased"]
    figures["telemetry"] = report["telemetry"]
    figures["by_conv_kind"] = sorted(report["by"]["conv_kind"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=30, help="1:1 messages while all online")
    parser.add_argument("--while-stopped", type=int, default=3, help="per sender, to carol")
    parser.add_argument("--pause", type=float, default=20.0, help="seconds carol stays frozen")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between sends")
    parser.add_argument("--html", type=Path, help="keep the HTML page here")
    parser.add_argument("--quick", action="store_true", help="10 messages, a 12 s freeze")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.while_stopped, args.pause = 10, 2, 12.0
    work = Path(tempfile.mkdtemp(prefix="chinwag-report-run-"))
    try:
        run = trio.run(run_clients, args, work)
        chinwag: Chinwag = run.pop("chinwag")
        html = args.html or work / "report.html"
        done = subprocess.run(
            chinwag.command("collector", "report", "--db", run["db_url"], "--json",
                            "--html", str(html)),
            capture_output=True, text=True, env=chinwag.env(), timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"collector report failed:\n{done.stderr}")
        report = json.loads(done.stdout)
        setup = {
            "bench": "telemetry_report_run",
            "clients": len(NAMES),
            "messages": run["messages"],
            "frozen_s": args.pause,
            "heartbeat_upload_s": PERIOD_S,
            "run_s": run["run_s"],
            "html_bytes": html.stat().st_size,
        }
        print(json.dumps(setup), flush=True)
        print(json.dumps({"bench": "telemetry_report_figures", **headline(report)}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
