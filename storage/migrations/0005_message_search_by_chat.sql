-- Full-text search within one chat: the conversation id is indexed too, so a search in one
-- chat intersects two lists in the index instead of walking every match of a frequent word
-- in every chat (150 ms for a word in 1 of 7 of 1M messages, searched in a small chat; see
-- docs/storage.md, Measurements). The body is the only column searched for what a person
-- types (storage/repositories/messages.py puts it under a `body :` filter).

DROP TRIGGER messages_search_insert;
DROP TRIGGER messages_search_delete;
DROP TRIGGER messages_search_update;
DROP TABLE message_search;

CREATE VIRTUAL TABLE message_search USING fts5 (
    body,
    conversation_id,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search (rowid, body, conversation_id)
    VALUES (new.id, new.body, new.conversation_id);
END;

CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO message_search (message_search, rowid, body, conversation_id)
    VALUES ('delete', old.id, old.body, old.conversation_id);
END;

CREATE TRIGGER messages_search_update AFTER UPDATE OF body, conversation_id ON messages BEGIN
    INSERT INTO message_search (message_search, rowid, body, conversation_id)
    VALUES ('delete', old.id, old.body, old.conversation_id);
    INSERT INTO message_search (rowid, body, conversation_id)
    VALUES (new.id, new.body, new.conversation_id);
END;

INSERT INTO message_search (message_search) VALUES ('rebuild');
