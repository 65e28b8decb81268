"""The report's arithmetic: percentiles from exact values or histograms, summaries, rounding.

Everything is computed in a fixed order from integers or deterministic floats, so the same
inputs give the same JSON bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

PERCENTILES = (50, 90, 99)


def rounded(value: float, digits: int = 6) -> float:
    return round(value, digits)


def percentile_sorted(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 for an empty one)."""
    if not values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[rank - 1]


def summary(values: Sequence[float], digits: int = 6) -> dict[str, float]:
    """min, mean, p50/p90/p99 and max of the values."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    out: dict[str, float] = {
        "count": len(ordered),
        "min": rounded(ordered[0], digits),
        "mean": rounded(math.fsum(ordered) / len(ordered), digits),
    }
    for pct in PERCENTILES:
        out[f"p{pct}"] = rounded(percentile_sorted(ordered, pct), digits)
    out["max"] = rounded(ordered[-1], digits)
    return out


def histogram_percentile(histogram: Mapping[int, int], pct: float) -> int:
    """Nearest-rank percentile of the values a {value: count} histogram holds."""
    total = sum(histogram.values())
    if not total:
        return 0
    rank = max(1, math.ceil(pct / 100 * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)


def histogram_summary(histogram: Mapping[int, int], scale: float = 1.0) -> dict[str, float]:
    """Like `summary` for a histogram of integer values, each multiplied by `scale`."""
    total = sum(histogram.values())
    if not total:
        return {"count": 0}
    mean = math.fsum(value * count for value, count in histogram.items()) / total
    out: dict[str, float] = {
        "count": total,
        "min": rounded(min(histogram) * scale),
        "mean": rounded(mean * scale),
    }
    for pct in PERCENTILES:
        out[f"p{pct}"] = rounded(histogram_percentile(histogram, pct) * scale)
    out["max"] = rounded(max(histogram) * scale)
    return out


def ordered_histogram(histogram: Mapping[int, int]) -> dict[str, int]:
    """A histogram with string keys in ascending order, as JSON wants it."""
    return {str(value): histogram[value] for value in sorted(histogram)}
