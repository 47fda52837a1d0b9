-- A way of reaching a contact that stopped working (a Telegram user who blocked the bot,
-- a deleted account): why, and since when. Cleared when they write again.
ALTER TABLE contact_identities ADD COLUMN unreachable TEXT;
ALTER TABLE contact_identities ADD COLUMN unreachable_at BIGINT;
