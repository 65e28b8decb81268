-- Opt-in telemetry's local side (chat/telemetry, docs/telemetry.md "The client"): events
-- persist here first and leave in batches when the collector can be reached, so an outage
-- never hides the failures it caused. The 0001 `telemetry_queue` table stays unused.
--
-- `seq` is the per-install sequence number, given when the event is stored (gap-free: the
-- collector measures telemetry's own loss from it). `body` is the event's exact JSON as it
-- will be sent; `bytes` its length, for the caps and the "what we send" view.

CREATE TABLE telemetry_outbox (
    seq   INTEGER PRIMARY KEY,
    id    TEXT NOT NULL UNIQUE,
    type  TEXT NOT NULL,
    t     INTEGER NOT NULL,
    body  TEXT NOT NULL,
    bytes INTEGER NOT NULL
);

-- Consent, install id and token, next seq, drop counters, a pending deletion request.
CREATE TABLE telemetry_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The last batches that left (or were written by the dry run), with their exact body.
CREATE TABLE telemetry_sent (
    id        INTEGER PRIMARY KEY,
    batch_id  TEXT NOT NULL,
    sent_at   INTEGER NOT NULL,
    status    TEXT NOT NULL,
    events    INTEGER NOT NULL,
    accepted  INTEGER NOT NULL,
    duplicate INTEGER NOT NULL,
    rejected  INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,
    body      TEXT NOT NULL
);
