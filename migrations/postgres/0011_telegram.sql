-- Telegram's first needs; both are channel-neutral.

-- A way of reaching a contact that stopped working (a Telegram user who blocked the bot,
-- a deleted account): why, and since when. It stops counting once they write again
-- (a later inbound message; see the contact read in sql_store.rs).
ALTER TABLE contact_identities ADD COLUMN unreachable TEXT;
ALTER TABLE contact_identities ADD COLUMN unreachable_at BIGINT;

-- One-use codes an agent hands a customer to continue on Telegram: the bot's deep link
-- (t.me/BOT?start=c_CODE) joins their Telegram to the contact of this conversation.
CREATE TABLE link_codes (
    code            TEXT PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    created_by      BIGINT REFERENCES agents (id) ON DELETE SET NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
