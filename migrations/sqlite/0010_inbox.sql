-- The agent side's own tables: interface language, the conversation's intent, canned responses, @mentions in
-- notes, login failures shared by every instance, and files agents attach to replies.
ALTER TABLE agents ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';
-- The first intent the bot recognised in a conversation, for reports.
ALTER TABLE conversations ADD COLUMN intent TEXT;

-- Replies an agent inserts by typing /shortcut.
CREATE TABLE canned_responses (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    shortcut   TEXT    NOT NULL UNIQUE,
    title      TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    created_by INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- An agent named in a private note (@name); seen once they open the conversation.
CREATE TABLE mentions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    agent_id        INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    created_at      INTEGER NOT NULL,
    seen_at         INTEGER,
    UNIQUE (message_id, agent_id)
);
CREATE INDEX mentions_by_agent ON mentions (agent_id, conversation_id);

-- Failed logins per email, so a lockout holds on every instance.
CREATE TABLE login_failures (
    email        TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    first_at     INTEGER NOT NULL,
    locked_until INTEGER
);

-- Files attached to agents' replies, served to the agent and to the customer's
-- channel. Bounded in size by the web layer.
CREATE TABLE files (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    content_type    TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    sha256          TEXT    NOT NULL,
    data            BLOB   NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX files_by_conversation ON files (conversation_id);

-- Outbound webhooks read the events table (written in the same transaction as each
-- change, so it is the outbox) from a cursor per webhook. One instance at a time
-- holds a webhook's lease; a failure is retried with backoff before the cursor moves.
CREATE TABLE webhook_cursors (
    name          TEXT    PRIMARY KEY,
    last_event_id INTEGER NOT NULL,
    lease_owner   TEXT,
    lease_until   INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0,
    due_at        INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    delivered     INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL
);

-- Business hours set by an admin in the pages; they take the place of a team's
-- [teams.*] table from the configuration file. JSON of the same fields.
CREATE TABLE team_hours (
    team       TEXT    PRIMARY KEY,
    config     TEXT    NOT NULL,
    updated_by TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Addresses website-chat visitors typed to get replies by mail. Not identities: an
-- address typed into a chat proves nothing, so mail from it must not join this
-- contact. Erased with the contact.
CREATE TABLE visitor_emails (
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (contact_id, email)
);
