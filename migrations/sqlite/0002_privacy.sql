-- Privacy: who exported or erased what, and when. The detail never holds message text.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT 'null',
    created_at INTEGER NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (created_at);
-- Retention erases old message bodies by age.
CREATE INDEX messages_by_age ON messages (channel, created_at);
