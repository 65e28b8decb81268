"""The real commands: `chinwag collector serve` as a process (register, upload, SIGTERM),
then `chinwag collector report --json --html`, and the HTML page in a real headless Chromium
with the network closed: its charts are in the DOM and drawn on the screenshot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from harness import browser
from harness.collector import days_ago, now_ms
from harness.processes import Chinwag
from harness.telemetry import DAY_MS, HOUR_MS, FakeInstall, conversation, gzip_json

from chat.telemetry.collector.report_html import COLORS


async def _register(client: httpx.AsyncClient, code: str, mode: str = "relay") -> FakeInstall:
    answer = await client.post("/v1/register", json={"schema_version": 1, "cohort_code": code})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["cohort"] == "wave-1"
    return FakeInstall(body["install_id"], body["token"], mode=mode)


async def _upload(client: httpx.AsyncClient, install: FakeInstall, events: list[object]) -> None:
    body = gzip_json(install.batch(events, sent_at=now_ms()))  # type: ignore[arg-type]
    answer = await client.post(
        "/v1/batch",
        content=body,
        headers={"Authorization": f"Bearer {install.token}", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["rejected"] == []


@pytest.mark.slow
async def test_serve_then_report_then_the_page_in_a_headless_browser(
    db_url: str, tmp_path: Path
) -> None:
    chinwag = Chinwag(tmp_path / "data")
    try:
        process = await chinwag.start(
            "collector", "serve", "--listen", "127.0.0.1:0", "--db", db_url,
            "--cohort", "wave1-code=wave-1",
        )  # fmt: skip
        url = (await process.line()).removeprefix("collector ")
        assert await process.line() == "ready"
        t0 = days_ago(2)
        k_tel, conv = conversation(b"cli group")
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            alice = await _register(client, "wave1-code")
            bob = await _register(client, "wave1-code", mode="light")
            alice_events = [alice.start(t0 - 10), alice.join(t0 - 5, conv)]
            bob_events = [bob.start(t0 - 10), bob.join(t0 - 5, conv)]
            for number in range(20):
                sent_at = t0 + number * 60_000
                alice_events.append(alice.sent(sent_at, k_tel, bytes([number]), conv))
                if number % 5:
                    delay = 200 + number * 100
                    bob_events.append(
                        bob.received(sent_at + delay, k_tel, bytes([number]), conv, lat_ms=delay)
                    )
            bob_events.append(bob.heartbeat(t0 + DAY_MS + HOUR_MS))
            await _upload(client, alice, alice_events)
            await _upload(client, bob, bob_events)
            metrics = (await client.get("/metrics")).text
        assert 'chinwag_collector_events_total{outcome="accepted"} 41' in metrics
        process.stop()
        assert await process.wait() == 0
        assert "chinwag collector stopped" in await process.rest()

        page = tmp_path / "report.html"
        done = chinwag.run("collector", "report", "--db", db_url, "--json", "--html", str(page))
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        text = chinwag.run("collector", "report", "--db", db_url)
        assert text.returncode == 0, text.stderr
    finally:
        await chinwag.close()

    overall = report["overall"]
    assert (overall["pairs"], overall["delivered"], overall["lost"]) == (20, 16, 4)
    assert overall["eventual_delivery_known"]["value"] == 0.8
    assert report["by"]["cohort"]["wave-1"]["pairs"] == 20
    assert "Eventual delivery (known pairs): 80.0 % (n=20, coverage 100.0 %)" in text.stdout

    html = page.read_text()
    assert not re.search(r"\b(src|href)\s*=|url\(|<script|@import", html)
    assert set(re.findall(r"https?://[^\"' ]+", html)) == {"http://www.w3.org/2000/svg"}
    if not db_url.startswith("sqlite"):
        return  # the page is the same whatever the database; one browser run is enough
    chromium = browser.find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (make setup-test installs it as root)")
    dom = browser.dump_dom(chromium, page)
    assert dom.count("<svg") == 3
    assert len(re.findall(r'<rect class="bar"', dom)) >= 4
    assert "chinwag reliability report" in dom and "Telemetry's own loss" in dom
    pixels = browser.png_pixels(browser.screenshot(chromium, page, (1000, 1100)))
    known_blue = tuple(int(COLORS["known"][i : i + 2], 16) for i in (1, 3, 5))
    assert browser.count_color(pixels, known_blue) > 500  # the known-delivery bar is drawn


def test_wrong_options_are_one_sentence_each(tmp_path: Path) -> None:
    chinwag = Chinwag(tmp_path / "data")
    db = f"sqlite:///{tmp_path / 'c.sqlite'}"
    no_cohort = chinwag.run("collector", "serve", "--db", db, "--listen", "127.0.0.1:0")
    bad_db = chinwag.run("collector", "report", "--db", "mysql://x/y")
    bad_day = chinwag.run("collector", "report", "--db", db, "--from", "yesterday")
    bad_cohort = chinwag.run("collector", "serve", "--db", db, "--cohort", "has space=x")
    bad_listen = chinwag.run("collector", "serve", "--db", db, "--open", "--listen", "nowhere")
    bad_limits = chinwag.run(
        "collector", "serve", "--db", db, "--open", "--max-connections-per-source", "0"
    )
    for done, sentence in (
        (no_cohort, "give at least one --cohort CODE=NAME, or --open"),
        (bad_db, "must start with sqlite:/// or postgresql://"),
        (bad_day, "--from must be a day, YYYY-MM-DD"),
        (bad_cohort, "--cohort must be CODE=NAME"),
        (bad_listen, "--listen must be HOST:PORT"),
        (bad_limits, "--max-connections-per-source must be from 1"),
    ):
        assert done.returncode == 2, done.stderr
        assert sentence in done.stderr
        assert "Traceback" not in done.stderr
