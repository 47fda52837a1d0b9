-- Search documents rewritten in batches, off the message's transaction: rewriting a
-- conversation's whole FTS5 document on every message cost a third of the writer's
-- time under load (`frontdesk bench e2e`). A new message now only marks its
-- conversation; the store rewrites the marked documents a batch at a time, every
-- second and before each search, so a search still sees every message stored.
CREATE TABLE search_pending (
    conversation_id INTEGER PRIMARY KEY
);

DROP TRIGGER conversation_search_insert;

CREATE TRIGGER conversation_search_insert AFTER INSERT ON messages
WHEN new.search_text <> '' BEGIN
    INSERT INTO search_pending (conversation_id) VALUES (new.conversation_id)
        ON CONFLICT (conversation_id) DO NOTHING;
END;
