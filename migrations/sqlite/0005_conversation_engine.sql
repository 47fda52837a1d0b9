-- The conversation engine: queue and assignment, SLA, reopening, CSAT, verification.

-- Agents: presence, how many open conversations they take at most, seniority, and
-- when they were last given one (round-robin).
ALTER TABLE agents ADD COLUMN status TEXT NOT NULL DEFAULT 'offline'
    CHECK (status IN ('online', 'away', 'offline'));
ALTER TABLE agents ADD COLUMN status_since INTEGER;
ALTER TABLE agents ADD COLUMN capacity INTEGER NOT NULL DEFAULT 5;
ALTER TABLE agents ADD COLUMN tier INTEGER NOT NULL DEFAULT 1;
ALTER TABLE agents ADD COLUMN last_assigned_at INTEGER;

CREATE TABLE agent_teams (
    agent_id INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    team     TEXT    NOT NULL,
    PRIMARY KEY (agent_id, team)
);
CREATE INDEX agent_teams_by_team ON agent_teams (team);

-- Conversations: the tier that must handle it, when it first reached the people's
-- queue, when its status last changed, the first agent reply, SLA due times and
-- breaches, how often it was reopened, and the customer's language.
ALTER TABLE conversations ADD COLUMN tier INTEGER NOT NULL DEFAULT 1;
ALTER TABLE conversations ADD COLUMN queued_at INTEGER;
ALTER TABLE conversations ADD COLUMN status_since INTEGER;
ALTER TABLE conversations ADD COLUMN first_response_at INTEGER;
ALTER TABLE conversations ADD COLUMN first_response_due INTEGER;
ALTER TABLE conversations ADD COLUMN resolution_due INTEGER;
ALTER TABLE conversations ADD COLUMN first_response_breached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN resolution_breached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN reopened INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN language TEXT;
-- The queue: open, unassigned conversations of a team.
CREATE INDEX conversations_queue ON conversations (team, status, assignee_id);

-- A contact's channel identity that the contact proved is theirs (an email address
-- after a code).
ALTER TABLE contact_identities ADD COLUMN verified_at INTEGER;

-- One satisfaction survey per conversation, asked once.
CREATE TABLE csat (
    conversation_id INTEGER PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    agent_id        INTEGER REFERENCES agents (id),
    team            TEXT,
    asked_at        INTEGER NOT NULL,
    rating          INTEGER CHECK (rating BETWEEN 1 AND 5),
    comment         TEXT,
    answered_at     INTEGER,
    message_id      INTEGER
);

-- Email verification codes, stored hashed.
CREATE TABLE verifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- Who asked: an agent's id, or null for the bot.
    agent_id        INTEGER REFERENCES agents (id),
    state           TEXT    NOT NULL
        CHECK (state IN ('awaiting_email', 'awaiting_code', 'verified', 'expired', 'failed', 'cancelled')),
    email           TEXT,
    code_hash       TEXT,
    tries           INTEGER NOT NULL DEFAULT 0,
    expires_at      INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX verifications_by_conversation ON verifications (conversation_id, id);
