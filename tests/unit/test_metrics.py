"""Prometheus text exposition, byte for byte, and the sans-IO HTTP pieces of chat.waku.metrics."""

from __future__ import annotations

import math

import pytest

from chat.waku.metrics import (
    CONTENT_TYPE,
    HttpError,
    Metric,
    MetricError,
    Request,
    Sample,
    format_value,
    parse_request_head,
    render,
    response_bytes,
    route,
)


def test_exposition_is_exactly_the_text_format() -> None:
    metrics = [
        Metric.single("chinwag_connected_peers", "gauge", "Peers with an open connection.", 3),
        Metric.by_label(
            "chinwag_store_requests_total",
            "counter",
            "Store queries answered, by status code.",
            "status",
            {"429": 2, "200": 17},
        ),
        Metric(
            "chinwag_lightpush_requests_total",
            "counter",
            "Light push requests.",
            (Sample((("version", "v3"), ("status", "200")), 1),),
        ),
        Metric.by_label("chinwag_filter_requests_total", "counter", "None yet.", "status", {}),
    ]
    assert render(metrics) == (
        "# HELP chinwag_connected_peers Peers with an open connection.\n"
        "# TYPE chinwag_connected_peers gauge\n"
        "chinwag_connected_peers 3\n"
        "# HELP chinwag_store_requests_total Store queries answered, by status code.\n"
        "# TYPE chinwag_store_requests_total counter\n"
        'chinwag_store_requests_total{status="200"} 17\n'
        'chinwag_store_requests_total{status="429"} 2\n'
        "# HELP chinwag_lightpush_requests_total Light push requests.\n"
        "# TYPE chinwag_lightpush_requests_total counter\n"
        'chinwag_lightpush_requests_total{version="v3",status="200"} 1\n'
        "# HELP chinwag_filter_requests_total None yet.\n"
        "# TYPE chinwag_filter_requests_total counter\n"
    )
    assert render([]) == ""


def test_help_and_label_values_are_escaped() -> None:
    metric = Metric(
        "chinwag_x",
        "gauge",
        'back\\slash and\nnewline "quoted"',
        (Sample((("topic", 'a"b\\c\nd'),), 1.5),),
    )
    assert render([metric]) == (
        '# HELP chinwag_x back\\\\slash and\\nnewline "quoted"\n'
        "# TYPE chinwag_x gauge\n"
        'chinwag_x{topic="a\\"b\\\\c\\nd"} 1.5\n'
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (42, "42"),
        (3.0, "3"),
        (0.25, "0.25"),
        (2.0**60, "1.152921504606847e+18"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_values(value: float, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize("name", ["", "9lives", "has-dash", "has space", "é"])
def test_bad_metric_names_are_refused(name: str) -> None:
    with pytest.raises(MetricError):
        Metric.single(name, "gauge", "x", 1)


@pytest.mark.parametrize("label", ["__reserved", "with-dash", "1st", ""])
def test_bad_label_names_are_refused(label: str) -> None:
    with pytest.raises(MetricError):
        Metric("chinwag_x", "gauge", "x", (Sample(((label, "v"),), 1),))


def test_a_metric_name_appears_once() -> None:
    one = Metric.single("chinwag_x", "gauge", "x", 1)
    with pytest.raises(MetricError, match="twice"):
        render([one, one])


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"GET /metrics HTTP/1.1\r\nHost: x", Request("GET", "/metrics")),
        (b"GET /metrics?name[]=x HTTP/1.0", Request("GET", "/metrics")),
        (b"HEAD / HTTP/1.1", Request("HEAD", "/")),
    ],
)
def test_request_heads(head: bytes, expected: Request) -> None:
    assert parse_request_head(head) == expected


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"", 400),
        (b"GET /metrics", 400),
        (b"GET  /metrics HTTP/1.1", 400),
        (b"GET metrics HTTP/1.1", 400),
        (b"G\xffT /metrics HTTP/1.1", 400),
        (b"GET /metrics HTTP/2", 505),
        (b"\x16\x03\x01\x02\x00\x01", 400),  # a TLS ClientHello
    ],
)
def test_bad_request_heads(head: bytes, status: int) -> None:
    with pytest.raises(HttpError) as caught:
        parse_request_head(head)
    assert caught.value.status == status


def test_routes() -> None:
    assert route(Request("GET", "/metrics")) == 200
    assert route(Request("HEAD", "/metrics")) == 200
    assert route(Request("POST", "/metrics")) == 405
    assert route(Request("GET", "/")) == 404
    assert route(Request("GET", "/metrics/")) == 404


def test_responses() -> None:
    assert (
        response_bytes(200, b"a 1\n")
        == (
            f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: 4\r\n"
            "Connection: close\r\n\r\na 1\n"
        ).encode()
    )
    head_only = response_bytes(200, b"a 1\n", head_only=True)
    assert head_only.endswith(b"Content-Length: 4\r\nConnection: close\r\n\r\n")
    not_allowed = response_bytes(405)
    assert not_allowed.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    assert b"\r\nAllow: GET, HEAD\r\n" in not_allowed
    assert not_allowed.endswith(b"\r\n\r\nMethod Not Allowed\n")
