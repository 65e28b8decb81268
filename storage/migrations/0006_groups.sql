-- Private groups (chat/groups/): each group's membership log, its Megolm sessions, the
-- invitations, and who each outgoing message went to and who acknowledged it.

-- The signed membership changes of each group we are or were in (chat/groups/log.py).
CREATE TABLE group_changes (
    group_id  TEXT NOT NULL,
    change_id TEXT NOT NULL,
    lamport   INTEGER NOT NULL,
    signed    BLOB NOT NULL,
    added_at  INTEGER NOT NULL,
    PRIMARY KEY (group_id, change_id)
) WITHOUT ROWID;

-- Megolm sessions (chat/groups/keys.py): ours and the members', each as the chat layer's JSON
-- with its pickle encrypted with a key derived from the database key. The row with an empty
-- session id lists our own past sessions.
CREATE TABLE group_sessions (
    group_id   TEXT NOT NULL,
    session_id TEXT NOT NULL,
    owner      TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (json_valid(state)),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, session_id)
) WITHOUT ROWID;

-- Invitations sent and received (chat/groups/invites.py), each flow as JSON.
CREATE TABLE group_invites (
    id         TEXT PRIMARY KEY,
    group_id   TEXT NOT NULL,
    direction  TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
    peer       TEXT NOT NULL,
    state      TEXT,
    flow       TEXT NOT NULL CHECK (json_valid(flow)),
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Who an outgoing message was sent to (the chat's other members at that moment), and when
-- each acknowledged it: "delivered 3/5" and who is missing survive a restart.
CREATE TABLE message_recipients (
    message         INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    member          TEXT NOT NULL,
    acknowledged_at INTEGER,
    PRIMARY KEY (message, member)
) WITHOUT ROWID;

-- 'text' (a chat message) or 'system' (a line about the chat: a join, a leave, a rename).
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'text'
    CHECK (kind IN ('text', 'system'));
