"""Opt-in telemetry on the chat screen, with the real app, its messenger and a real collector
on loopback: the first-run question (No / Yes / Show what would be sent) is asked once, the
answer is kept in the profile, a yes starts the client at once; "What we send" (F10) shows
the queue and the next batch byte for byte, pauses, and opting out there deletes the local
queue and the collector's rows; CHINWAG_TELEMETRY=off beats every setting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness.terminal import send_bytes
from harness.tui import on, running
from harness.tui_telemetry import event_types, reporting_config, rows, start_collector
from textual.widgets import RadioButton, Static

from chat.config import Config
from chat.session import Session
from ui.app import ChinwagApp
from ui.screens.link import LinkScreen
from ui.screens.main import MainScreen
from ui.screens.onboarding import OnboardingScreen
from ui.screens.telemetry import ConsentScreen, TelemetryScreen

SIZE = (110, 40)


def recorded(config: Config, ui: Any) -> str | None:
    """The choice kept in the profile, read as `chinwag telemetry` would (after the app)."""
    from chat.telemetry.client.profile import recorded_choice

    session = Session(config)
    with session.unlock(ui.passphrase) as opened:
        return recorded_choice(opened.store)


def static(app: ChinwagApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


@pytest.mark.slow
def test_yes_at_reliability_reports_at_once_and_the_question_is_not_asked_again(
    config: Config,
    network: Any,
    ui: Any,
    make_profile: Callable[[str], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CHINWAG_TELEMETRY", raising=False)
    make_profile("Alice")
    collector = start_collector(network, tmp_path)
    config = reporting_config(config, collector.url)

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, on(app, ConsentScreen))
            assert collector.url in ui.screen_text(app)
            assert rows(network, collector)["installs"] == 0  # off until the person says yes
            await pilot.press("s")  # show what would be sent: the dictionary
            await ui.wait_until(
                pilot, lambda: "event.msg_recv" in static(app, "#consent-dictionary")
            )
            await pilot.click("#level-reliability")
            assert app.screen.query_one("#level-reliability", RadioButton).value
            await pilot.press("y")
            await ui.wait_until(pilot, on(app, MainScreen))
            await ui.wait_for_text(pilot, "telemetry is on (reliability)")
            await ui.wait_until(
                pilot,
                lambda: rows(network, collector)["installs"] == 1,
                what="the install registered",
            )
            await ui.wait_until(
                pilot, lambda: rows(network, collector)["events"] >= 1, what="events stored"
            )
            await pilot.press("ctrl+q")
        assert recorded(config, ui) == "reliability"

        again = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with again.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(again))
            telemetry = again.telemetry
            assert telemetry is not None
            await ui.wait_until(pilot, lambda: telemetry.running, what="the client running")
            await pilot.pause(0.5)
            assert not isinstance(again.screen, ConsentScreen)  # asked once
            await pilot.press("ctrl+q")

    asyncio.run(scenario())


@pytest.mark.slow
def test_no_is_kept_nothing_is_sent_and_what_we_send_opts_in_later(
    config: Config,
    network: Any,
    ui: Any,
    make_profile: Callable[[str], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CHINWAG_TELEMETRY", raising=False)
    make_profile("Alice")
    collector = start_collector(network, tmp_path)
    config = reporting_config(config, collector.url)

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, on(app, ConsentScreen))
            await pilot.click("#consent-no")
            await ui.wait_until(pilot, on(app, MainScreen))
            assert app.telemetry is not None and not app.telemetry.running
            await pilot.press("f10")
            await ui.wait_until(pilot, on(app, TelemetryScreen))
            await ui.wait_for_text(pilot, "level: off")
            assert "queued: 0 events, 0 bytes" in ui.screen_text(app)
            await pilot.pause(1.5)  # an upload period
            assert rows(network, collector)["installs"] == 0
            await pilot.press("ctrl+q")
        assert recorded(config, ui) == "off"

        later = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with later.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(later))
            await pilot.press("f10")  # not asked again; opting in later, from What we send
            await ui.wait_until(pilot, on(later, TelemetryScreen))
            await pilot.press("h")
            await ui.wait_for_text(pilot, "level: health")
            await ui.wait_until(
                pilot,
                lambda: rows(network, collector)["installs"] == 1,
                what="the install registered",
            )
            await pilot.press("ctrl+q")
        assert recorded(config, ui) == "health"

    asyncio.run(scenario())


@pytest.mark.slow
def test_the_kill_switch_beats_the_config_file_and_asks_nothing(
    config: Config,
    network: Any,
    ui: Any,
    make_profile: Callable[[str], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHINWAG_TELEMETRY", "off")
    make_profile("Alice")
    collector = start_collector(network, tmp_path)
    config = reporting_config(config, collector.url, level="reliability")

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await pilot.press("f10")
            await ui.wait_until(pilot, on(app, TelemetryScreen))
            await ui.wait_for_text(pilot, "CHINWAG_TELEMETRY=off")
            await pilot.press("r")  # asking for a level changes nothing
            await ui.wait_for_text(pilot, "telemetry stays off")
            assert app.telemetry is not None and not app.telemetry.running
            await pilot.press("escape")
            await ui.wait_until(pilot, on(app, MainScreen))
            await pilot.press("ctrl+p", *"What we send", "enter")  # the palette opens it too
            await ui.wait_until(pilot, on(app, TelemetryScreen))
            await pilot.press("ctrl+q")
        assert recorded(config, ui) is None
        assert rows(network, collector)["installs"] == 0

    asyncio.run(scenario())


@pytest.mark.slow
def test_what_we_send_shows_the_next_batch_pauses_and_opting_out_deletes_both_sides(
    config: Config,
    network: Any,
    ui: Any,
    make_profile: Callable[[str], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The config file says reliability (a QA setup): no question, the client runs. F10
    shows the batch that waits byte for byte; paused, nothing is sent; resumed, it leaves;
    o twice opts out: the queue and the collector's rows are gone, and the next start stays
    off (the profile's choice over the config file)."""
    monkeypatch.delenv("CHINWAG_TELEMETRY", raising=False)
    make_profile("Alice")
    collector = start_collector(network, tmp_path)
    # The first upload 5-7 s after the start: the queue is looked at before it leaves.
    config = reporting_config(config, collector.url, level="reliability", upload_seconds=6.0)

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await pilot.press("f10")
            await ui.wait_until(pilot, on(app, TelemetryScreen))
            await ui.wait_for_text(pilot, "level: reliability")
            assert "event.heartbeat.bw.relay.in" in static(app, "#telemetry-dictionary")
            await ui.wait_until(
                pilot,
                lambda: '"type":"session_start"' in static(app, "#telemetry-next"),
                what="the next batch shown",
            )
            await pilot.press("p")
            await ui.wait_for_text(pilot, "paused: yes")
            assert rows(network, collector)["batches"] == 0
            batch = json.loads(static(app, "#telemetry-next"))
            assert batch["schema_version"] == 1
            assert next(e["type"] for e in batch["events"]) == "session_start"
            assert "no batch sent yet" in static(app, "#telemetry-sent")
            await pilot.press("p")
            await ui.wait_for_text(pilot, "paused: no")
            await ui.wait_until(
                pilot, lambda: " sent: " in static(app, "#telemetry-sent"), what="a batch sent"
            )
            assert rows(network, collector)["batches"] >= 1
            await pilot.press("o")
            await ui.wait_for_text(pilot, "Press o again")
            assert rows(network, collector)["installs"] == 1
            await pilot.press("o")
            await ui.wait_for_text(pilot, "the collector deleted what it held")
            await ui.wait_for_text(pilot, "queued: 0 events, 0 bytes")
            assert rows(network, collector)["installs"] == 0
            assert rows(network, collector)["events"] == 0
            await pilot.press("ctrl+q")
        assert recorded(config, ui) == "off"

        again = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with again.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(again))
            await pilot.pause(1.5)  # an upload period: nothing registers
            assert again.telemetry is not None and not again.telemetry.running
            await pilot.press("ctrl+q")
        assert rows(network, collector)["installs"] == 0

    asyncio.run(scenario())


def test_a_new_profile_is_asked_after_onboarding_beside_its_link(
    config: Config, network: Any, ui: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHINWAG_TELEMETRY", raising=False)
    collector = start_collector(network, tmp_path)
    config = reporting_config(config, collector.url)

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config(), kdf=ui.cheap_kdf))
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, on(app, OnboardingScreen))
            send_bytes(app, f"Bob\t{ui.passphrase}\t{ui.passphrase}\r")
            await ui.wait_until(
                pilot,
                lambda: (
                    any(isinstance(s, ConsentScreen) for s in app.screen_stack)
                    and any(isinstance(s, LinkScreen) for s in app.screen_stack)
                ),
                what="the question and the link",
            )
            for _ in range(2):  # the link closes; Esc on the question is No
                await pilot.press("escape")
                await pilot.pause(0.2)
            await ui.wait_until(pilot, on(app, MainScreen))
            await pilot.press("ctrl+q")
        assert recorded(config, ui) == "off"

    asyncio.run(scenario())


def test_quitting_sends_the_last_heartbeat_and_the_session_end(
    config: Config,
    network: Any,
    ui: Any,
    make_profile: Callable[[str], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Heartbeats every 300 s, as shipped: the only one of this short session is the one
    quitting records, and it leaves before the app ends (the client's shielded close under
    the bridge's cancellation: no counters lost at quit)."""
    monkeypatch.delenv("CHINWAG_TELEMETRY", raising=False)
    make_profile("Alice")
    collector = start_collector(network, tmp_path)
    config = reporting_config(config, collector.url, level="health", heartbeat_seconds=300.0)

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await ui.wait_until(
                pilot,
                lambda: event_types(network, collector)["session_start"] == 1,
                what="the session's start uploaded",
            )
            assert event_types(network, collector)["heartbeat"] == 0
            await pilot.press("ctrl+q")
        types = event_types(network, collector)
        assert types["heartbeat"] == 1 and types["session_end"] == 1

    asyncio.run(scenario())


def test_a_failing_telemetry_client_never_stops_the_chat(
    config: Config,
    network: Any,
    ui: Any,
    make_profile: Callable[[str], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dry-run file is a directory: the first batch cannot be written and the client
    stops with an error; the messenger runs on."""
    monkeypatch.delenv("CHINWAG_TELEMETRY", raising=False)
    make_profile("Alice")
    directory = tmp_path / "not-a-file"
    directory.mkdir()
    config = reporting_config(config, "http://127.0.0.1:9", level="health", dry_run=directory)

    async def scenario() -> None:
        app = ChinwagApp(Session(config, override=network.config()), passphrase=ui.passphrase)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await ui.wait_until(pilot, running(app))
            await pilot.pause(2.5)  # past the first upload (1 s ± 1/6 s)
            assert app.messenger is not None and app.messenger_failure is None
            await pilot.press("ctrl+q")

    asyncio.run(scenario())
