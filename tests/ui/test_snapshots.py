"""SVG snapshots of the main screens (pytest-textual-snapshot), so layout regressions show up
in review. Screens are fed hand-made views with fixed keys and times (UTC), so the pictures
are stable; the flows behind them are tested against real messengers in test_flows.py.
Update after an intended change: pytest tests/ui/test_snapshots.py --snapshot-update"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from harness.tui import NOW, settle
from harness.tui import ViewHost as Harness
from textual.pilot import Pilot
from textual.widgets import Input, Static

from chat.events import (
    BandwidthLineView,
    BandwidthView,
    ChatView,
    ContactView,
    HealthView,
    IdentityView,
    MessageView,
    OutboxItemView,
    SearchResultView,
    TraceStep,
    VerificationView,
)
from ui.screens.bandwidth import BandwidthScreen
from ui.screens.contacts import ContactsScreen
from ui.screens.display_name import DisplayNameScreen
from ui.screens.help import HelpScreen
from ui.screens.link import LinkScreen
from ui.screens.main import MainScreen
from ui.screens.onboarding import OnboardingScreen
from ui.screens.outbox import OutboxScreen
from ui.screens.search import SearchScreen
from ui.screens.telemetry import ConsentScreen
from ui.screens.trace import TraceScreen
from ui.screens.verify import VerifyScreen
from ui.screens.verify_request import VerificationRequestScreen
from ui.widgets.chat_list import ChatList
from ui.widgets.conversation import ConversationView
from ui.widgets.health_bar import HealthBar

SIZE = (110, 32)
ALICE = "cw1alice000000000000000000000000000000000000000000000000000000"
BOB = "cw1bob00000000000000000000000000000000000000000000000000000000"
CAROL = "cw1carol000000000000000000000000000000000000000000000000000000"
BOB_CHAT = "b" * 32
CAROL_CHAT = "c" * 32


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def message(
    n: int, text: str, *, outgoing: bool, state: str, at: float, **extra: Any
) -> MessageView:
    return MessageView(
        id=f"m{n:03d}",
        chat_id=BOB_CHAT,
        sender=ALICE if outgoing else BOB,
        text=text,
        outgoing=outgoing,
        timestamp=at,
        state=state,
        **extra,
    )


CHATS = [
    ChatView(BOB_CHAT, "direct", "Bob", 2, NOW - 60, BOB),
    ChatView(CAROL_CHAT, "direct", "Carol", 0, NOW - 86_400, CAROL),
]
MESSAGES = [
    message(1, "are we still on for tonight?", outgoing=False, state="received", at=NOW - 90_000),
    message(2, "yes! 8 pm at the usual place", outgoing=True, state="delivered", at=NOW - 89_000),
    message(3, "great, see you there", outgoing=False, state="received", at=NOW - 88_000),
    message(
        4,
        "running late, ten minutes",
        outgoing=True,
        state="stored",
        at=NOW - 3_000,
    ),
    message(
        5,
        "can you bring the charger?\nthe small one",
        outgoing=True,
        state="failed",
        at=NOW - 2_000,
        state_reason="no peers",
        attempts=8,
        max_attempts=8,
    ),
    message(6, "on my way", outgoing=True, state="sent", at=NOW - 1_000),
    message(
        7,
        "sure, bringing it",
        outgoing=False,
        state="received",
        at=NOW - 120,
        reply_to="m005",
    ),
    message(8, "and snacks", outgoing=False, state="received", at=NOW - 60),
    message(
        9,
        "thanks!",
        outgoing=True,
        state="queued",
        at=NOW - 10,
        state_reason="no peers",
        attempts=2,
        max_attempts=8,
        next_attempt_at=NOW + 20,
    ),
]
HEALTH = HealthView(
    status="degraded",
    online=False,
    peers=3,
    peers_per_shard={"/waku/2/rs/42/0": 2, "/waku/2/rs/42/1": 0},
    store_reachable=True,
    services={"store": True},
    last_catch_up=NOW - 30,
    outbox=2,
)


def feed_main(screen: MainScreen) -> None:
    chat_list = screen.query_one(ChatList)
    chat_list.set_chats(CHATS)
    chat_list.set_requests(1)
    chat_list.set_current(BOB_CHAT)
    screen.current_chat = BOB_CHAT
    screen.own_name = "Alice"
    screen.query_one("#chat-title").update(f"Bob  ·  {BOB}")  # type: ignore[attr-defined]
    screen.query_one(ConversationView).show_chat(BOB_CHAT, MESSAGES, unread=2, has_older=True)
    screen.query_one(HealthBar).show(HEALTH)


def test_main_screen(snap_compare: Any) -> None:
    assert snap_compare(Harness(MainScreen, feed_main), terminal_size=SIZE, run_before=settle)


def test_main_screen_light_theme(snap_compare: Any) -> None:
    async def light(pilot: Pilot[Any]) -> None:
        pilot.app.theme = "textual-light"
        await settle(pilot)

    assert snap_compare(Harness(MainScreen, feed_main), terminal_size=SIZE, run_before=light)


def test_contacts_screen(snap_compare: Any) -> None:
    contacts = [
        ContactView(
            CAROL, "Carol", "request_received", None, "hi, we met at the meetup", False, NOW - 100
        ),
        ContactView(
            "cw1dave00000000000000000000000000000000000000000000000000000000",
            "Dave",
            "request_sent",
            None,
            "it's Alice",
            False,
            NOW - 50,
            next_send_at=NOW + 40,
            sends=2,
        ),
        ContactView(BOB, "Bob", "mutual", BOB_CHAT, "", True, NOW - 3_600),
    ]

    def feed(screen: ContactsScreen) -> None:
        screen.show_contacts(contacts)
        screen.query_one(HealthBar).show(HEALTH)
        screen.show_dropped(312)  # spam protection dropped some requests

    assert snap_compare(Harness(ContactsScreen, feed), terminal_size=SIZE, run_before=settle)


def test_outbox_screen(snap_compare: Any) -> None:
    items = [
        OutboxItemView(
            "m005",
            "message",
            BOB_CHAT,
            "can you bring the charger?",
            "failed",
            "no peers",
            8,
            8,
            None,
            NOW - 2_000,
        ),
        OutboxItemView(
            "m009", "message", BOB_CHAT, "thanks!", "queued", "no peers", 2, 8, NOW + 20, NOW - 10
        ),
        OutboxItemView(
            "cw1dave0", "contact_request", None, "Dave", "queued", None, 2, 0, NOW + 40, NOW - 50
        ),
    ]

    def feed(screen: OutboxScreen) -> None:
        screen.show_items(items)
        screen.query_one(HealthBar).show(HEALTH)

    assert snap_compare(Harness(OutboxScreen, feed), terminal_size=SIZE, run_before=settle)


def test_trace_screen(snap_compare: Any) -> None:
    steps = [
        TraceStep(NOW - 89_000, None, "queued", {}),
        TraceStep(NOW - 88_999.8, "queued", "sent", {"peers_reached": 2, "waku_hash": "9f2c…"}),
        TraceStep(NOW - 88_998.9, "sent", "stored", {"store_peer": "16Uiu2HAm…x7Q"}),
        TraceStep(
            NOW - 88_990.2, "stored", "delivered", {"ack_from": BOB[:20] + "…", "ack_by": "history"}
        ),
    ]

    def feed(screen: TraceScreen) -> None:
        screen.show_steps(steps)

    assert snap_compare(
        Harness(lambda: TraceScreen(MESSAGES[1]), feed), terminal_size=SIZE, run_before=settle
    )


def test_help_screen(snap_compare: Any) -> None:
    assert snap_compare(Harness(HelpScreen, lambda _: None), terminal_size=SIZE, run_before=settle)


def test_telemetry_consent_question(snap_compare: Any) -> None:
    """The first-run question: off until yes, where it goes, what each level sends."""
    harness = Harness(lambda: ConsentScreen("https://collector.example.org"), lambda _: None)
    assert snap_compare(harness, terminal_size=(110, 36), run_before=settle)


class OnboardingHarness(Harness):
    """The onboarding screen needs only the profile's name from the app (no bridge: the
    whole app under the snapshot plugin would leave a trio guest run behind)."""

    profile = "default"
    TITLE = "OnboardingHarness"


def test_onboarding_screen(snap_compare: Any) -> None:
    async def fill(pilot: Pilot[Any]) -> None:
        await settle(pilot)  # steady cursors before typing, as in every snapshot
        await pilot.press(*"Alice")
        await pilot.press("tab", *"purple giraffes dance at dawn")
        await settle(pilot)

    app = OnboardingHarness(OnboardingScreen, lambda _: None)
    assert snap_compare(app, terminal_size=SIZE, run_before=fill)


def test_verification_request_screen(snap_compare: Any) -> None:
    bob = ContactView(BOB, "Bob", "mutual", BOB_CHAT, "", False, NOW - 3_600)
    app = Harness(lambda: VerificationRequestScreen(bob, theirs=True), lambda _: None)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_display_name_screen(snap_compare: Any) -> None:
    app = Harness(lambda: DisplayNameScreen("Alice"), lambda _: None)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_main_screen_offline_counts_down_to_the_next_dial(snap_compare: Any) -> None:
    offline = HealthView(
        status="offline", online=False, peers=0,
        peers_per_shard={"/waku/2/rs/42/0": 0, "/waku/2/rs/42/1": 0}, store_reachable=False,
        services={"store": False}, last_catch_up=NOW - 300, outbox=1, dialing=0,
        next_dial_at=NOW + 4.2, known_peers=1,
    )  # fmt: skip

    def feed(screen: MainScreen) -> None:
        feed_main(screen)
        screen.query_one(HealthBar).show(offline)

    assert snap_compare(Harness(MainScreen, feed), terminal_size=SIZE, run_before=settle)


def test_search_screen(snap_compare: Any) -> None:
    results = [
        SearchResultView(
            BOB_CHAT, "m004", "running late, ten minutes", NOW - 3_000,
            "running late, ten minutes", [(8, 12)], "Bob", ALICE, True,
        ),
        SearchResultView(
            CAROL_CHAT, "c017", "so we were late again, and the bakery had closed", NOW - 90_000,
            "…we were late again, and the bakery…", [(9, 13)], "Carol", CAROL, False,
        ),
    ]  # fmt: skip

    def feed(screen: SearchScreen) -> None:
        field = screen.query_one("#search-input", Input)
        with screen.prevent(Input.Changed):
            field.value = "late"
        screen.show_results(results, "late")
        screen.query_one("#search-status", Static).update("2 message(s) in every chat")

    app = Harness(lambda: SearchScreen(BOB_CHAT, "Bob"), feed)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_main_screen_on_a_small_window(snap_compare: Any) -> None:
    """60x15: the chat list narrows to 16 columns."""
    assert snap_compare(Harness(MainScreen, feed_main), terminal_size=(60, 15), run_before=settle)


def test_main_screen_with_no_peers(snap_compare: Any) -> None:
    """No peer configured, none found: the hint above the health bar says how to add one."""

    def feed(screen: MainScreen) -> None:
        feed_main(screen)
        alone = HealthView("offline", False, 0, {}, None, {}, None, 0)
        screen._show_health(alone)

    assert snap_compare(Harness(MainScreen, feed), terminal_size=(80, 24), run_before=settle)


LINK = IdentityView(ALICE, "Alice", "chinwag:" + "CnUIARIgDK-aMv3nQmA0B18z-8McW_M6lYBhCMcw1g" * 6)
"""The length of a real link (255 characters), fixed so the QR code is too."""


def test_link_screen_at_80x24(snap_compare: Any) -> None:
    """The whole link, the buttons, and a note where the QR code does not fit."""
    app = Harness(lambda: LinkScreen(LINK), lambda _: None)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_link_screen_with_the_qr_code_beside(snap_compare: Any) -> None:
    app = Harness(lambda: LinkScreen(LINK), lambda _: None)
    assert snap_compare(app, terminal_size=(120, 36), run_before=settle)


def test_verify_screen(snap_compare: Any) -> None:
    """The seven emoji over their names, in columns."""
    bob = ContactView(BOB, "Bob", "mutual", BOB_CHAT, "", False, NOW - 3_600)
    emoji = [("🐶", "Dog"), ("☁️", "Cloud"), ("🍓", "Strawberry"), ("⌛", "Hourglass"),
             ("🔑", "Key"), ("💡", "Light Bulb"), ("✈️", "Aeroplane")]  # fmt: skip

    def feed(screen: VerifyScreen) -> None:
        screen.show(VerificationView(BOB, "compare", emoji))

    app = Harness(lambda: VerifyScreen(bob), feed)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def _bandwidth_line(
    name: str, total_in: int, total_out: int, messages: int = 0
) -> BandwidthLineView:
    """Totals over an hour of uptime, a third of them in the last minute's rate."""
    return BandwidthLineView(
        name, total_in, total_out, messages, messages // 2,
        total_in / 3 / 60, total_out / 3 / 60, total_in / 3600, total_out / 3600,
    )  # fmt: skip


def test_bandwidth_screen(snap_compare: Any) -> None:
    protocols = [
        _bandwidth_line("relay", 4_812_000, 1_950_000),
        _bandwidth_line("store", 812_000, 31_000),
        _bandwidth_line("filter", 0, 0),
        _bandwidth_line("lightpush", 0, 0),
        _bandwidth_line("metadata", 1_210, 1_190),
        _bandwidth_line("identify", 9_800, 9_650),
        _bandwidth_line("discovery", 0, 0),
        _bandwidth_line("ping", 2_112, 2_112),
        _bandwidth_line("other", 96, 120),
    ]
    kinds = [
        _bandwidth_line("control", 1_310_000, 880_000, 5_400),
        _bandwidth_line("subscriptions", 2_400, 2_300, 40),
        _bandwidth_line("chat", 2_950_000, 910_000, 1_800),
        _bandwidth_line("sync", 420_000, 150_000, 1_100),
        _bandwidth_line("contact_request", 12_000, 3_100, 6),
        _bandwidth_line("join_request", 0, 0),
        _bandwidth_line("message", 117_600, 4_600, 90),
    ]
    wire = _bandwidth_line("wire", 5_900_000, 2_150_000)
    transport = _bandwidth_line("transport", 262_782, 154_928)
    view = BandwidthView(3_700.0, protocols, kinds, wire, transport)

    def feed(screen: BandwidthScreen) -> None:
        screen.show(view)
        screen.query_one(HealthBar).show(HEALTH)

    assert snap_compare(Harness(BandwidthScreen, feed), terminal_size=(110, 40), run_before=settle)
