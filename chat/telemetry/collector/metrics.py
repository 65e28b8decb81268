"""The collector's Prometheus metrics (`GET /metrics`), counted in memory since it started."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from chat.waku.metrics import Metric, Sample, render


@dataclass
class CollectorMetrics:
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    batches: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    registrations: int = 0
    deletions: int = 0
    db_errors: int = 0
    bytes_received: int = 0
    ingest_seconds: float = 0.0
    purged: Counter[str] = field(default_factory=Counter)

    def request(self, route: str, status: int) -> None:
        self.requests[(route, status)] += 1

    def render(self, installs: int) -> str:
        requests = tuple(
            Sample((("route", route), ("status", str(status))), count)
            for (route, status), count in sorted(self.requests.items())
        )
        return render(
            (
                Metric(
                    "chinwag_collector_requests_total",
                    "counter",
                    "HTTP requests by route and status",
                    requests,
                ),
                Metric.by_label(
                    "chinwag_collector_batches_total",
                    "counter",
                    "uploaded batches: ok (ingested) or invalid (422)",
                    "result",
                    {"ok": 0, "invalid": 0, **self.batches},
                ),
                Metric.by_label(
                    "chinwag_collector_events_total",
                    "counter",
                    "events by outcome: accepted, duplicate (a replay), rejected",
                    "outcome",
                    {"accepted": 0, "duplicate": 0, "rejected": 0, **self.events},
                ),
                Metric.by_label(
                    "chinwag_collector_rate_limited_total",
                    "counter",
                    "requests answered 429, by limit",
                    "limit",
                    {"register": 0, "upload": 0, "daily_cap": 0, **self.rate_limited},
                ),
                Metric.single(
                    "chinwag_collector_registrations_total",
                    "counter",
                    "installs registered",
                    self.registrations,
                ),
                Metric.single(
                    "chinwag_collector_deletions_total",
                    "counter",
                    "installs deleted on their request",
                    self.deletions,
                ),
                Metric.single(
                    "chinwag_collector_db_errors_total",
                    "counter",
                    "requests answered 503 because the database failed",
                    self.db_errors,
                ),
                Metric.single(
                    "chinwag_collector_received_bytes_total",
                    "counter",
                    "batch bytes received as sent (compressed or not)",
                    self.bytes_received,
                ),
                Metric.single(
                    "chinwag_collector_ingest_seconds_total",
                    "counter",
                    "seconds spent writing batches to the database",
                    self.ingest_seconds,
                ),
                Metric.by_label(
                    "chinwag_collector_purged_rows_total",
                    "counter",
                    "rows deleted by the retention job, by table",
                    "table",
                    dict(self.purged),
                ),
                Metric.single("chinwag_collector_installs", "gauge", "installs known", installs),
            )
        )
