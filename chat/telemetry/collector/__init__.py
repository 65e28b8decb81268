"""The telemetry collector: `chinwag collector serve|report|purge` (docs/telemetry.md).

tables (SQLAlchemy Core, SQLite or PostgreSQL) → store (registration, idempotent ingestion,
deletion, retention) → app (the HTTP API on chat/api's server, limits, metrics) → service
(the running process); report, report_html and report_text compute and show the report.
"""
