"""`chinwag collector`: the opt-in telemetry collector (docs/telemetry.md).

    chinwag collector serve --listen HOST:PORT --db URL [--cohort CODE=NAME ...] [--open]
    chinwag collector report --db URL [--from DATE] [--to DATE] [--json] [--html FILE]
    chinwag collector purge --db URL

`--db` is `sqlite:///path/to/file.sqlite` (the default: collector.sqlite in the data dir) or
`postgresql://user@host/dbname`. The implementation is chat.telemetry.collector.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from chat.config import Config
from chat.errors import UserError

NAME = "collector"
HELP = "run the opt-in telemetry collector, or compute its reliability report"
USES_PROFILE = False

DEFAULT_LISTEN = "127.0.0.1:8470"
DAY_MS = 86_400_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="collector_command", metavar="ACTION", required=True)
    serve = sub.add_parser("serve", help="serve the collector's HTTP API")
    serve.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT ({DEFAULT_LISTEN})")
    _db_argument(serve)
    serve.add_argument(
        "--cohort",
        action="append",
        default=[],
        metavar="CODE=NAME",
        help="a registration code and the cohort it joins (repeatable)",
    )
    serve.add_argument(
        "--open",
        action="store_true",
        help="let installs register without a code (cohort 'open')",
    )
    serve.add_argument(
        "--report-token-file",
        type=Path,
        metavar="FILE",
        help="serve GET /v1/report to bearers of the token in this file",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=256,
        help="open HTTP connections in all (256); behind a proxy, all come from its address",
    )
    serve.add_argument(
        "--max-connections-per-source", type=int, default=32, help="per address (32)"
    )
    serve.add_argument("--batches-per-minute", type=float, default=6.0)
    serve.add_argument("--events-per-day", type=int, default=20_000)
    report = sub.add_parser("report", help="compute the reliability report")
    _db_argument(report)
    report.add_argument("--from", dest="start", help="first day, YYYY-MM-DD (default: 7 days ago)")
    report.add_argument("--to", dest="end", help="last day, YYYY-MM-DD, included (default: today)")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument("--html", type=Path, metavar="FILE", help="write the HTML page here")
    purge = sub.add_parser("purge", help="run the retention job once")
    _db_argument(purge)


def _db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="sqlite:///FILE or postgresql://... (default: SQLite file)")


def _db_url(args: argparse.Namespace, config: Config) -> str:
    if args.db:
        return str(args.db)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{config.data_dir / 'collector.sqlite'}"


def _day_ms(text: str, option: str) -> int:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise UserError(f"{option} must be a day, YYYY-MM-DD (got {text!r})") from None
    return int(day.timestamp() * 1000)


def _parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UserError(f"--listen must be HOST:PORT (got {text!r})")
    return host.strip("[]") or "127.0.0.1", int(port)


def _cohorts(pairs: list[str]) -> dict[str, str]:
    cohorts: dict[str, str] = {}
    for pair in pairs:
        code, sep, name = pair.partition("=")
        for part in (code, name):
            if not sep or not _token(part):
                raise UserError(
                    f"--cohort must be CODE=NAME, each 1-32 letters, digits, '.', '_' or '-' "
                    f"(got {pair!r})"
                )
        cohorts[code] = name
    return cohorts


def _token(text: str) -> bool:
    from chat.telemetry import schema

    try:
        schema.PatternField("cohort", "", "").check(text, "cohort")
    except schema.SchemaError:
        return False
    return True


def run(args: argparse.Namespace, config: Config) -> int:
    from chat.telemetry.collector.tables import DatabaseUrlError

    try:
        if args.collector_command == "serve":
            return _serve(args, config)
        if args.collector_command == "report":
            return _report(args, config)
        return _purge(args, config)
    except DatabaseUrlError as exc:
        raise UserError(str(exc)) from None


def _serve(args: argparse.Namespace, config: Config) -> int:
    import trio

    from chat.api.limits import ApiLimits
    from chat.api.server import bind_api
    from chat.telemetry.collector.app import CollectorApp, CollectorConfig
    from chat.telemetry.collector.limits import CollectorLimits
    from chat.telemetry.collector.service import open_store, serve_collector

    host, port = _parse_listen(args.listen)
    cohorts = _cohorts(args.cohort)
    if not cohorts and not args.open:
        raise UserError("give at least one --cohort CODE=NAME, or --open to let anyone register")
    store = open_store(_db_url(args, config))
    limits = CollectorLimits(
        batches_per_minute=args.batches_per_minute, events_per_day=args.events_per_day
    )
    report_token = None
    if args.report_token_file is not None:
        try:
            report_token = args.report_token_file.read_text().strip()
        except OSError as exc:
            raise UserError(f"cannot read --report-token-file: {exc.strerror or exc}") from None
        if len(report_token) < 16:
            raise UserError("the report token must be at least 16 characters")
    app = CollectorApp(store, CollectorConfig(cohorts, args.open, limits, report_token))
    if not 1 <= args.max_connections_per_source <= args.max_connections <= 100_000:
        raise UserError(
            "--max-connections-per-source must be from 1 to --max-connections (at most 100000)"
        )
    http_limits = ApiLimits(
        max_connections=args.max_connections,
        max_connections_per_source=args.max_connections_per_source,
    )
    listener = bind_api(host, port)
    trio.run(serve_collector, app, listener, http_limits)
    return 0


def _report(args: argparse.Namespace, config: Config) -> int:
    from chat.telemetry.collector.report import compute_report
    from chat.telemetry.collector.report_html import render_html
    from chat.telemetry.collector.report_text import render_text
    from chat.telemetry.collector.tables import open_engine

    now_ms = int(time.time() * 1000)
    end_ms = _day_ms(args.end, "--to") + DAY_MS if args.end else (now_ms // DAY_MS + 1) * DAY_MS
    start_ms = _day_ms(args.start, "--from") if args.start else end_ms - 7 * DAY_MS
    if start_ms >= end_ms:
        raise UserError("--from must be on or before --to")  # the same window as GET /v1/report
    engine = open_engine(_db_url(args, config))
    report = compute_report(engine, start_ms=start_ms, end_ms=end_ms, now_ms=now_ms)
    if args.html:
        args.html.write_text(render_html(report), encoding="utf-8")
    if args.json:
        json.dump(report, sys.stdout, indent=1, sort_keys=True)
        print()
    elif not args.html:
        print(render_text(report))
    else:
        print(f"report written to {args.html}")
    return 0


def _purge(args: argparse.Namespace, config: Config) -> int:
    from chat.telemetry.collector.service import open_store

    deleted = open_store(_db_url(args, config)).purge(int(time.time() * 1000))
    print(", ".join(f"{table}: {n}" for table, n in deleted.items()))
    return 0
