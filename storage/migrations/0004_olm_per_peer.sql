-- The Olm sessions per peer identity key (chat/direct.py): saving after one message writes
-- that peer's row, not every session of the profile, so the cost of taking in a message no
-- longer grows with the number of people who ever wrote to us. The single row of
-- olm_sessions (the whole structure, as earlier versions kept it) is moved here by the
-- messenger on its first save after the upgrade and then deleted.
CREATE TABLE olm_peer_sessions (
    identity_key TEXT PRIMARY KEY,
    state        TEXT NOT NULL CHECK (json_valid(state)),
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;

