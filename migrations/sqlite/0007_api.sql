-- REST API tokens, stored as SHA-256 hashes of high-entropy random tokens (a token is
-- shown once, when created).
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id     INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    -- Space-separated: read, write.
    scopes       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Values every instance must share (the key that signs webchat visitor tokens).
CREATE TABLE settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Webchat: a visitor's messages across their conversations.
CREATE INDEX conversations_by_thread ON conversations (channel, account, thread_key, id);
