-- The search documents move to a file of their own beside the database (created and
-- filled by the store, crates/store/src/search.rs), so that writing them no longer
-- holds the database's one writer. Here: the old documents go, and each mark carries
-- a number that never repeats (`search_seq`), so that the indexer keeps the mark of a
-- conversation that changed again while its document was being written.
DROP TRIGGER conversation_search_insert;
DROP TRIGGER conversation_search_update;
DROP TRIGGER conversation_search_delete;
DROP TABLE conversation_search;

ALTER TABLE search_pending ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;

CREATE TABLE search_seq (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
);
INSERT INTO search_seq (id, n) VALUES (1, 0);

-- Marks `conversation_id` (NULL: nothing) with the next number.
CREATE VIEW search_mark AS SELECT NULL AS conversation_id;
CREATE TRIGGER search_mark_insert INSTEAD OF INSERT ON search_mark
WHEN new.conversation_id IS NOT NULL BEGIN
    UPDATE search_seq SET n = n + 1;
    INSERT INTO search_pending (conversation_id, seq)
        VALUES (new.conversation_id, (SELECT n FROM search_seq))
        ON CONFLICT (conversation_id) DO UPDATE SET seq = excluded.seq;
END;

CREATE TRIGGER search_mark_new_message AFTER INSERT ON messages
WHEN new.search_text <> '' BEGIN
    INSERT INTO search_mark (conversation_id) VALUES (new.conversation_id);
END;

-- Terms written for the first time (NULL before) are marked by whoever writes them
-- (`write_search_terms`), a conversation at a time.
CREATE TRIGGER search_mark_changed_message AFTER UPDATE OF search_text, conversation_id
ON messages
WHEN old.search_text IS NOT NULL OR old.conversation_id <> new.conversation_id BEGIN
    INSERT INTO search_mark (conversation_id) VALUES (old.conversation_id);
    INSERT INTO search_mark (conversation_id)
        SELECT new.conversation_id WHERE new.conversation_id <> old.conversation_id;
END;

CREATE TRIGGER search_mark_deleted_message AFTER DELETE ON messages BEGIN
    INSERT INTO search_mark (conversation_id) VALUES (old.conversation_id);
END;
