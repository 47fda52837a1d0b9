-- What a crash must not lose: the engine's turn on a stored customer message, and how
-- far a reply in several pieces has gone.

-- A customer message the conversation engine has yet to act on: written in the ingest
-- transaction, deleted after the engine's turn. The timers take the turns a crash (or
-- an engine error) left behind; `due_at` is when one may be taken again, moved
-- forward by whoever takes it, so that only one instance does.
CREATE TABLE engine_turns (
    message_id      BIGINT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    due_at          BIGINT NOT NULL
);
CREATE INDEX engine_turns_due ON engine_turns (due_at);

-- A channel's own note on a delivery across attempts (JSON): the pieces of a long reply
-- already sent, the Message-ID a mail goes out with. Written before and after each
-- piece, so a retry after a crash neither repeats what went out nor changes its id.
ALTER TABLE outbox ADD COLUMN progress TEXT;
