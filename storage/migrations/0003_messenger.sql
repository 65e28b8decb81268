-- What the messenger needs to resume exactly where it stopped.

-- The contact request flow with each person (chat/contacts.py), history included, as JSON;
-- their latest contact link (identity key, fallback key, display name) beside it.
CREATE TABLE contact_flows (
    chat_key   TEXT PRIMARY KEY,
    state      TEXT,
    flow       TEXT NOT NULL CHECK (json_valid(flow)),
    their_link TEXT,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The profile's Olm sessions (chat/direct.py), each session pickle encrypted with a key
-- derived from the database key.
CREATE TABLE olm_sessions (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    sessions   TEXT NOT NULL CHECK (json_valid(sessions)),
    updated_at INTEGER NOT NULL
);

-- The outbox core's bookkeeping for each entry (budgets, schedule, reason), as JSON.
ALTER TABLE outbox ADD COLUMN entry TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(entry));

-- Message ids are random and unique across conversations: look them up without the chat.
CREATE INDEX messages_by_message_id ON messages (message_id);
ALTER TABLE messages ADD COLUMN reply_to TEXT;
