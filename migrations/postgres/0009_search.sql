-- Full-text search over messages (crates/store/src/search.rs says why the terms are
-- written by Frontdesk): `search_text` holds a message's search terms, NULL until
-- written (the store fills older rows when it migrates), '' when there is nothing to
-- find (events, erased texts). A GIN index over the terms, split on spaces.
-- Needs a UTF-8 database, so that the parser takes Chinese characters as letters.
ALTER TABLE messages ADD COLUMN search_text TEXT;

CREATE INDEX messages_search ON messages USING gin (to_tsvector('simple', search_text))
    WHERE search_text IS NOT NULL AND search_text <> '';

CREATE INDEX messages_unindexed ON messages (id) WHERE search_text IS NULL;
