-- Full-text search (crates/store/src/search.rs says why Frontdesk writes the terms):
-- `messages.search_text` holds a message's search terms, NULL until written (the store
-- fills older rows when it migrates), '' when there is nothing to find (events, erased
-- texts). The index is one document per conversation, all its messages' terms, so a
-- search yields conversation ids straight away; triggers rewrite a conversation's
-- document when one of its messages changes.
ALTER TABLE messages ADD COLUMN search_text TEXT;

CREATE VIRTUAL TABLE conversation_search USING fts5 (
    terms,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER conversation_search_insert AFTER INSERT ON messages
WHEN new.search_text <> '' BEGIN
    DELETE FROM conversation_search WHERE rowid = new.conversation_id;
    INSERT INTO conversation_search (rowid, terms)
        SELECT new.conversation_id, group_concat(search_text, ' ') FROM messages
        WHERE conversation_id = new.conversation_id AND search_text <> ''
        HAVING count(*) > 0;
END;

-- Terms written for the first time (NULL before) are indexed by whoever writes them,
-- a conversation at a time (`write_search_terms`), not once per message here.
CREATE TRIGGER conversation_search_update AFTER UPDATE OF search_text, conversation_id
ON messages
WHEN old.search_text IS NOT NULL OR old.conversation_id <> new.conversation_id BEGIN
    DELETE FROM conversation_search WHERE rowid IN (old.conversation_id, new.conversation_id);
    INSERT INTO conversation_search (rowid, terms)
        SELECT conversation_id, group_concat(search_text, ' ') FROM messages
        WHERE conversation_id IN (old.conversation_id, new.conversation_id)
          AND search_text <> ''
        GROUP BY conversation_id;
END;

CREATE TRIGGER conversation_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM conversation_search WHERE rowid = old.conversation_id;
    INSERT INTO conversation_search (rowid, terms)
        SELECT old.conversation_id, group_concat(search_text, ' ') FROM messages
        WHERE conversation_id = old.conversation_id AND search_text <> ''
        HAVING count(*) > 0;
END;

CREATE INDEX messages_unindexed ON messages (id) WHERE search_text IS NULL;

-- Contacts by a part of their name or of a channel identity (an email address, a
-- handle): a trigram index of both, one row per contact, kept by triggers.
CREATE VIRTUAL TABLE contact_search USING fts5 (text, tokenize = 'trigram');

CREATE VIEW contact_search_text AS
    SELECT id, COALESCE(name, '') || ' ' || COALESCE(
        (SELECT group_concat(external_id || ' ' || COALESCE(display_name, ''), ' ')
         FROM contact_identities WHERE contact_id = contacts.id), '') AS text
    FROM contacts;

CREATE TRIGGER contact_search_contact_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contact_search (rowid, text) SELECT id, text FROM contact_search_text
        WHERE id = new.id;
END;

CREATE TRIGGER contact_search_contact_update AFTER UPDATE OF name ON contacts BEGIN
    DELETE FROM contact_search WHERE rowid = new.id;
    INSERT INTO contact_search (rowid, text) SELECT id, text FROM contact_search_text
        WHERE id = new.id;
END;

CREATE TRIGGER contact_search_contact_delete AFTER DELETE ON contacts BEGIN
    DELETE FROM contact_search WHERE rowid = old.id;
END;

CREATE TRIGGER contact_search_identity_insert AFTER INSERT ON contact_identities BEGIN
    DELETE FROM contact_search WHERE rowid = new.contact_id;
    INSERT INTO contact_search (rowid, text) SELECT id, text FROM contact_search_text
        WHERE id = new.contact_id;
END;

CREATE TRIGGER contact_search_identity_update AFTER UPDATE ON contact_identities BEGIN
    DELETE FROM contact_search WHERE rowid IN (old.contact_id, new.contact_id);
    INSERT INTO contact_search (rowid, text) SELECT id, text FROM contact_search_text
        WHERE id IN (old.contact_id, new.contact_id);
END;

CREATE TRIGGER contact_search_identity_delete AFTER DELETE ON contact_identities BEGIN
    DELETE FROM contact_search WHERE rowid = old.contact_id;
    INSERT INTO contact_search (rowid, text) SELECT id, text FROM contact_search_text
        WHERE id = old.contact_id;
END;

-- The contacts that exist already.
INSERT INTO contact_search (rowid, text) SELECT id, text FROM contact_search_text;
