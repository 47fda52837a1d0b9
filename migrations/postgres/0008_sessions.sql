-- Agents' browser sessions, valid on every instance. The cookie holds a random token;
-- only its SHA-256 is stored. Each session has its own CSRF token for forms.
CREATE TABLE sessions (
    token_hash   TEXT    PRIMARY KEY,
    agent_id     BIGINT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    csrf         TEXT    NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_by_agent ON sessions (agent_id);
