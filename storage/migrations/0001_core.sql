-- Core schema. Times are Unix milliseconds; keys and hashes are BLOBs.

CREATE TABLE profile_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The single Olm account of this profile, pickled with a key derived from the DB key.
CREATE TABLE identity (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    chat_key       TEXT NOT NULL,
    account_pickle TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE contacts (
    chat_key     TEXT PRIMARY KEY,
    identity_key TEXT NOT NULL,
    display_name TEXT NOT NULL,
    verified     INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    blocked      INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    added_at     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE contact_requests (
    id         INTEGER PRIMARY KEY,
    chat_key   TEXT NOT NULL,
    direction  TEXT NOT NULL CHECK (direction IN ('incoming', 'outgoing')),
    state      TEXT NOT NULL,
    intro      TEXT NOT NULL DEFAULT '',
    reason     TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX contact_requests_by_key ON contact_requests (chat_key, created_at);

CREATE TABLE conversations (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('direct', 'group', 'community')),
    title            TEXT NOT NULL,
    pubsub_topic     TEXT NOT NULL,
    content_topic    TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL,
    unread           INTEGER NOT NULL DEFAULT 0,
    muted            INTEGER NOT NULL DEFAULT 0 CHECK (muted IN (0, 1))
) WITHOUT ROWID;
CREATE INDEX conversations_by_activity ON conversations (last_activity_at);

-- `state` is the latest entry of message_transitions, kept here for listing.
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id      TEXT NOT NULL,
    sender          TEXT NOT NULL,
    outgoing        INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
    body            TEXT NOT NULL,
    sent_at         INTEGER NOT NULL,
    received_at     INTEGER,
    state           TEXT NOT NULL,
    state_reason    TEXT,
    waku_hash       BLOB,
    UNIQUE (conversation_id, message_id)
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, sent_at, id);
CREATE INDEX messages_by_hash ON messages (waku_hash) WHERE waku_hash IS NOT NULL;

CREATE TABLE message_transitions (
    id         INTEGER PRIMARY KEY,
    message    INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    at         INTEGER NOT NULL,
    evidence   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(evidence))
);
CREATE INDEX message_transitions_by_message ON message_transitions (message, id);

-- Committed before anything touches the wire; removed when the message leaves `queued`/retry.
CREATE TABLE outbox (
    message         INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    pubsub_topic    TEXT NOT NULL,
    content_topic   TEXT NOT NULL,
    payload         BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at);

CREATE TABLE sds_channels (
    channel_id TEXT PRIMARY KEY,
    lamport    INTEGER NOT NULL,
    state      BLOB NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE sync_cursors (
    pubsub_topic   TEXT NOT NULL,
    content_topic  TEXT NOT NULL,
    synced_until   INTEGER NOT NULL,
    store_cursor   BLOB,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (pubsub_topic, content_topic)
) WITHOUT ROWID;

CREATE TABLE received_hashes (
    hash       BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX received_hashes_expiry ON received_hashes (expires_at);

CREATE TABLE communities (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    owner_key   TEXT NOT NULL,
    description BLOB NOT NULL,
    shard       INTEGER,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    joined_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE community_keys (
    community_id TEXT NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('content', 'shard')),
    epoch        INTEGER NOT NULL,
    key          BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (community_id, kind, epoch)
) WITHOUT ROWID;

CREATE TABLE telemetry_queue (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL CHECK (json_valid(payload)),
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0
);
