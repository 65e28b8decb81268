-- A join request we sent keeps the community link it was sent for and the newest signed
-- description it goes by: after a restart it keeps its re-send schedule, its expiry and its
-- answers without the link being opened again (chat/messenger/community_joins.py).
ALTER TABLE community_requests ADD COLUMN link TEXT NOT NULL DEFAULT '';
ALTER TABLE community_requests ADD COLUMN description BLOB;
