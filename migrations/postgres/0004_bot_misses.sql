-- How many times in a row the bot could not answer in this conversation.
ALTER TABLE conversations ADD COLUMN bot_misses BIGINT NOT NULL DEFAULT 0;
