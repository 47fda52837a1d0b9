-- Entities found in a message (transaction hashes, addresses, amounts) for agents.
ALTER TABLE messages ADD COLUMN entities TEXT NOT NULL DEFAULT '[]';
