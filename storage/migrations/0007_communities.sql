-- Communities (chat/communities/): the owner key of the communities we own, and the join
-- requests sent and received. The description, our relation ('owner' when we hold the owner
-- key, else 'member': our role in it is what the signed description says) and the content
-- and shard keys per epoch live in `communities` and `community_keys` (0001).

CREATE TABLE community_owner_keys (
    community_id TEXT PRIMARY KEY,
    seed         BLOB NOT NULL CHECK (length(seed) = 32),
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;

-- Join requests (chat/communities/join.py), each flow as JSON.
CREATE TABLE community_requests (
    id           TEXT PRIMARY KEY,
    community_id TEXT NOT NULL,
    direction    TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
    requester    TEXT NOT NULL,
    state        TEXT,
    flow         TEXT NOT NULL CHECK (json_valid(flow)),
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX community_requests_by_community ON community_requests (community_id);
