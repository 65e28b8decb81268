"""The report page's charts: axis labels that read (plain digits, round steps, inside the
drawing) and bars that stay visible beside much taller ones (a real run's latency: p50 11 ms,
p99 12.9 s)."""

from __future__ import annotations

import re

import pytest

from chat.telemetry.collector.report import Tally
from chat.telemetry.collector.report_html import (
    CHAR_PX,
    RATE_ROWS,
    _summary_table,
    axis_top,
    bar_chart,
    tick_label,
)


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


def test_a_breakdown_has_a_row_per_figure_and_a_column_per_group() -> None:
    """The breakdowns used one column per figure (15 columns): at 1200 px the latency
    column fell off the right edge (it only scrolled into view)."""
    cohorts = {"wave-1": Tally(), "wave-2": Tally()}
    cohorts["wave-1"].latencies = [11, 12_888]
    cohorts["wave-1"].store_seen, cohorts["wave-1"].sent = 2, 2  # coverage 100 %
    cohorts["wave-2"].store_seen, cohorts["wave-2"].sent = 1, 4  # coverage 25 %: provisional
    html = _summary_table("By cohort", {k: v.summary() for k, v in cohorts.items()})
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    assert re.findall(r"<th>([^<]*)</th>", rows[0]) == ["", "wave-1", "wave-2"]
    labels = [re.match(r"<th>([^<]*)</th>", row).group(1) for row in rows[1:]]  # type: ignore[union-attr]
    assert labels == [
        "pairs",
        "delivered / lost / unknown",
        *(label for _, label in RATE_ROWS),
        "latency p50 / p90 / p99",
    ]
    assert all(row.count("<td") == 2 for row in rows[1:])
    latency = rows[-1]
    assert "11 / 12888 / 12888 ms (n=2)" in latency and "– (n=0)" in latency
    confirmation = rows[3 + [k for k, _ in RATE_ROWS].index("send_confirmation")]
    assert confirmation.count('class="provisional"') == 1
