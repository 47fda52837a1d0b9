-- The search documents move to a file of their own beside the database (created and
-- filled by the store, crates/store/src/search.rs), so that writing them no longer
-- holds the database's one writer. Here: the old documents go, and the marks carry a
-- counter, so that the indexer keeps the mark of a conversation that changed again
-- while its document was being written.
DROP TRIGGER conversation_search_insert;
DROP TRIGGER conversation_search_update;
DROP TRIGGER conversation_search_delete;
DROP TABLE conversation_search;

ALTER TABLE search_pending ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER search_mark_insert AFTER INSERT ON messages
WHEN new.search_text <> '' BEGIN
    INSERT INTO search_pending (conversation_id) VALUES (new.conversation_id)
        ON CONFLICT (conversation_id) DO UPDATE SET seq = seq + 1;
END;

-- Terms written for the first time (NULL before) are marked by whoever writes them
-- (`write_search_terms`), a conversation at a time.
CREATE TRIGGER search_mark_update AFTER UPDATE OF search_text, conversation_id ON messages
WHEN old.search_text IS NOT NULL OR old.conversation_id <> new.conversation_id BEGIN
    INSERT INTO search_pending (conversation_id)
        VALUES (old.conversation_id), (new.conversation_id)
        ON CONFLICT (conversation_id) DO UPDATE SET seq = seq + 1;
END;

CREATE TRIGGER search_mark_delete AFTER DELETE ON messages BEGIN
    INSERT INTO search_pending (conversation_id) VALUES (old.conversation_id)
        ON CONFLICT (conversation_id) DO UPDATE SET seq = seq + 1;
END;
