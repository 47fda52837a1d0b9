-- Frontdesk schema, SQLite flavour. The PostgreSQL file of the same name has the same
-- tables, columns and indexes; only the id and integer types differ.
-- Timestamps are INTEGER microseconds since the Unix epoch on both backends, so the
-- same SQL orders and compares them the same way. JSON values are TEXT.

CREATE TABLE agents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent')),
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT,
    language   TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One row per way of reaching a contact; (channel, external_id) finds the contact.
CREATE TABLE contact_identities (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id   INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    channel      TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    display_name TEXT,
    created_at   INTEGER NOT NULL,
    UNIQUE (channel, external_id)
);
CREATE INDEX contact_identities_contact ON contact_identities (contact_id);

CREATE TABLE conversations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel         TEXT    NOT NULL,
    account         TEXT    NOT NULL,
    contact_id      INTEGER NOT NULL REFERENCES contacts (id),
    thread_key      TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('bot', 'open', 'pending', 'snoozed', 'resolved')),
    priority        TEXT    NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    assignee_id     INTEGER REFERENCES agents (id),
    team            TEXT,
    labels          TEXT    NOT NULL DEFAULT '[]',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_message_at INTEGER NOT NULL,
    snoozed_until   INTEGER,
    resolved_at     INTEGER
);
-- At most one unresolved conversation per thread: two instances racing to open one
-- for the same thread cannot both succeed.
CREATE UNIQUE INDEX conversations_open_thread
    ON conversations (channel, account, thread_key) WHERE status <> 'resolved';
CREATE INDEX conversations_by_recency ON conversations (last_message_at DESC, id DESC);
CREATE INDEX conversations_by_status ON conversations (status, last_message_at DESC, id DESC);
CREATE INDEX conversations_by_assignee ON conversations (assignee_id, last_message_at DESC, id DESC);
CREATE INDEX conversations_by_contact ON conversations (contact_id);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    channel         TEXT    NOT NULL,
    account         TEXT    NOT NULL,
    direction       TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    author          TEXT    NOT NULL CHECK (author IN ('contact', 'bot', 'agent', 'system')),
    agent_id        INTEGER REFERENCES agents (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('text', 'note', 'event')),
    text            TEXT    NOT NULL,
    attachments     TEXT    NOT NULL DEFAULT '[]',
    findings        TEXT    NOT NULL DEFAULT '[]',
    -- Inbound: the sender's id on the channel (who to answer); outbound: null.
    sender_id       TEXT,
    external_id     TEXT,
    reply_to        TEXT,
    meta            TEXT    NOT NULL DEFAULT 'null',
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL,
    edited_at       INTEGER
);
-- The exactly-once rule for inbound messages.
CREATE UNIQUE INDEX messages_inbound_external
    ON messages (channel, account, external_id) WHERE direction = 'in';
-- A retried API send with the same key is one message.
CREATE UNIQUE INDEX messages_idempotency
    ON messages (conversation_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);

-- Earlier texts of edited messages, oldest first.
CREATE TABLE message_edits (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    -- The channel's id of the edit that replaced this text, so an edit is applied once.
    external_id TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    replaced_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX message_edits_once ON message_edits (message_id, external_id);

-- One row per outbound message to deliver. A worker claims a row by setting a lease;
-- a lease that runs out (the worker died) lets another worker claim it again.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      INTEGER NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    channel         TEXT    NOT NULL,
    account         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    external_id     TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox (channel, account, due_at) WHERE status = 'queued';

CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    conversation_id INTEGER,
    message_id      INTEGER,
    data            TEXT    NOT NULL DEFAULT 'null',
    created_at      INTEGER NOT NULL
);
CREATE INDEX events_by_conversation ON events (conversation_id, id);

-- Where each channel account is in its provider's stream (Telegram offset, IMAP
-- UIDVALIDITY:UID, X since_id). Written in the same transaction as the ingest.
CREATE TABLE cursors (
    channel    TEXT    NOT NULL,
    account    TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (channel, account)
);
