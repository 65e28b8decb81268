"""The report page's charts: axis labels that read (plain digits, round steps, inside the
drawing) and bars that stay visible beside much taller ones (a real run's latency: p50 11 ms,
p99 12.9 s)."""

from __future__ import annotations

import re

import pytest

from chat.telemetry.collector.report_html import CHAR_PX, axis_top, bar_chart, tick_label


@pytest.mark.parametrize(
    ("peak", "top"),
    [
        (14, 20),
        (12_888, 20_000),
        (21_365, 40_000),
        (3, 4),
        (1, 4),
        (0, 4),
        (86_400_000, 2e8),
        (0.5, 4),
    ],
)
def test_the_axis_top_is_four_round_steps(peak: float, top: float) -> None:
    assert axis_top(peak) == top
    assert axis_top(peak) >= peak


def ticks_and_margin(svg: str) -> tuple[list[str], float]:
    ticks = re.findall(r'<text class="tick" x="([0-9.]+)"[^>]*>([^<]*)</text>', svg)
    return [label for _, label in ticks], float(ticks[0][0])


def test_tick_labels_are_plain_digits_that_fit_left_of_the_axis() -> None:
    svg = bar_chart(
        "Delivery latency by day (ms)",
        ["2026-12-07"],
        [("p50", "#000", [11.0]), ("p90", "#111", [12_888.0]), ("p99", "#222", [12_892.0])],
        top=axis_top(12_892),
        unit="",
    )
    labels, anchor = ticks_and_margin(svg)
    assert labels == ["0", "5,000", "10,000", "15,000", "20,000"]
    assert all(anchor >= CHAR_PX * len(label) for label in labels)  # ends at x, starts >= 0
    assert "e+" not in svg


def test_a_day_of_latency_still_fits() -> None:
    svg = bar_chart(
        "latency", ["d"], [("p99", "#000", [86_400_000.0])], top=axis_top(86_400_000), unit=""
    )
    labels, anchor = ticks_and_margin(svg)
    assert labels[-1] == "200,000,000"
    assert anchor >= CHAR_PX * len(labels[-1])


def test_counts_get_whole_ticks_and_percentages_keep_their_unit() -> None:
    labels, _ = ticks_and_margin(bar_chart("pairs", ["d"], [("n", "#000", [14.0])],
                                           top=axis_top(14), unit=""))  # fmt: skip
    assert labels == ["0", "5", "10", "15", "20"]
    labels, _ = ticks_and_margin(bar_chart("rate", ["d"], [("n", "#000", [50.0])],
                                           top=100, unit="%"))  # fmt: skip
    assert labels == ["0%", "25%", "50%", "75%", "100%"]
    assert tick_label(66.6666) == "66.67" and tick_label(1234.0) == "1,234"


def test_a_small_bar_beside_a_tall_one_is_still_drawn() -> None:
    svg = bar_chart(
        "latency",
        ["d"],
        [("p50", "#000", [11.0]), ("p99", "#111", [12_892.0]), ("none", "#222", [0.0])],
        top=axis_top(12_892),
        unit="",
    )
    heights = dict(re.findall(r'data-series="(\w+)"[^>]*height="([0-9.]+)"', svg))
    assert float(heights["p50"]) >= 1.0
    assert float(heights["none"]) == 0.0
