"""The collector's tables (SQLAlchemy Core): the same on SQLite and PostgreSQL.

Raw `events` and `batches` are kept 30 days; the projections the report reads (one table per
kind of fact, each row keyed by the event it came from, so a replayed event can never add a
second row) 90 days; `installs` until the install asks to be deleted. No table has a column
for an IP address, a name, a key, a topic or text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)

metadata = MetaData()

ID = 36
REF = 32
SHORT = 32


def _time(name: str = "t") -> Column[Any]:
    return Column(name, BigInteger, nullable=False)


installs = Table(
    "installs",
    metadata,
    Column("install_id", String(ID), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("cohort", String(SHORT), nullable=False),
    Column("created_day", Integer, nullable=False),
    Column("last_seen_day", Integer),
    Column("last_app_version", String(SHORT)),
    Column("platform", String(SHORT)),
    Column("mode", String(SHORT)),
)

batches = Table(
    "batches",
    metadata,
    Column("batch_id", String(ID), primary_key=True),
    Column("install_id", String(ID), nullable=False, index=True),
    _time("received_at"),
    _time("client_sent_at"),
    Column("skew_ms", BigInteger, nullable=False),
    Column("n_events", Integer, nullable=False),
    Column("n_accepted", Integer, nullable=False),
    Column("n_duplicate", Integer, nullable=False),
    Column("n_rejected", Integer, nullable=False),
    Column("outbox_len", BigInteger, nullable=False),
    Column("oldest_pending_age_s", BigInteger, nullable=False),
    Column("dropped_json", Text, nullable=False),
    Column("upload_failures_total", BigInteger, nullable=False),
    Column("first_seq", BigInteger),
    Column("last_seq", BigInteger),
    Column("app_version", String(SHORT), nullable=False),
    Column("mode", String(SHORT), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("event_id", String(ID), primary_key=True),
    Column("install_id", String(ID), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("session_id", String(ID), nullable=False),
    Column("type", String(SHORT), nullable=False),
    _time(),
    _time("received_at"),
    Column("app_version", String(SHORT), nullable=False),
    Column("body", Text, nullable=False),
    UniqueConstraint("install_id", "seq", name="events_install_seq"),
    Index("events_type_t", "type", "t"),
    Index("events_install_t", "install_id", "t"),
    Index("events_received_at", "received_at"),
)


def _projection(name: str, *columns: Column[Any]) -> Table:
    return Table(
        name,
        metadata,
        Column("event_id", String(ID), primary_key=True),
        Column("install_id", String(ID), nullable=False, index=True),
        _time(),
        *columns,
        Index(f"{name}_t", "t"),
    )


sessions = _projection(
    "sessions",
    Column("session_id", String(ID), nullable=False),
    Column("kind", String(SHORT), nullable=False),
    Column("reason", String(SHORT), nullable=False),
    Column("mode", String(SHORT)),
    Column("duration_s", BigInteger),
)
heartbeats = _projection(
    "heartbeats",
    Column("session_id", String(ID), nullable=False),
    Column("online_s", BigInteger, nullable=False),
    Column("offline_s", BigInteger, nullable=False),
    Column("msgs_sent", BigInteger, nullable=False),
    Column("msgs_recv", BigInteger, nullable=False),
    Column("msgs_dup", BigInteger, nullable=False),
    Column("msgs_gaps", BigInteger, nullable=False),
    Column("bw_json", Text, nullable=False),
)
memberships = _projection(
    "memberships",
    Column("conv_ref", String(REF), nullable=False, index=True),
    Column("action", String(SHORT), nullable=False),
    Column("conv_kind", String(SHORT), nullable=False),
    Column("size_bucket", String(SHORT), nullable=False),
)
msg_sent = _projection(
    "msg_sent",
    Column("msg_ref", String(REF), nullable=False, index=True),
    Column("conv_ref", String(REF), nullable=False),
    Column("path", String(SHORT), nullable=False),
    Column("result", String(SHORT), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("app_version", String(SHORT), nullable=False),
)
msg_confirm = _projection(
    "msg_confirm",
    Column("msg_ref", String(REF), nullable=False, index=True),
    Column("kind", String(SHORT), nullable=False),
    Column("delay_ms", BigInteger, nullable=False),
)
msg_recv = _projection(
    "msg_recv",
    Column("msg_ref", String(REF), nullable=False, index=True),
    Column("conv_ref", String(REF), nullable=False),
    Column("via", String(SHORT), nullable=False),
    Column("lat_ms", BigInteger, nullable=False),
    Column("decrypt_ok", Boolean, nullable=False),
)
gaps = _projection(
    "gaps",
    Column("conv_ref", String(REF), nullable=False),
    Column("kind", String(SHORT), nullable=False),
    Column("how", String(SHORT), nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("span_ms", BigInteger, nullable=False),
)

RAW_TABLES = (events, batches)
PROJECTIONS = (sessions, heartbeats, memberships, msg_sent, msg_confirm, msg_recv, gaps)
PER_INSTALL = (*RAW_TABLES, *PROJECTIONS, installs)


class DatabaseUrlError(ValueError):
    """A --db URL this collector cannot use."""


def normalize_url(url: str) -> str:
    """`sqlite:///file`, or `postgresql://...` (driven by psycopg 3)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("sqlite://", "postgresql+psycopg://")):
        return url
    raise DatabaseUrlError(
        f"the database URL must start with sqlite:/// or postgresql:// (got {url.split(':')[0]!r})"
    )


def open_engine(url: str) -> Engine:
    """An engine with the tables created. SQLite runs in WAL mode with a 5 s busy timeout,
    so reports can read while the collector writes."""
    url = normalize_url(url)
    if url.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise DatabaseUrlError(
                "PostgreSQL needs psycopg: pip install 'chinwag[postgres]'"
            ) from None
        engine = create_engine(url, pool_pre_ping=True, pool_size=4)
    else:
        engine = create_engine(url)

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    metadata.create_all(engine)
    return engine
