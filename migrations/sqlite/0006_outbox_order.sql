-- A conversation's messages are delivered in order: the claim looks for an earlier
-- queued row of the same conversation.
CREATE INDEX outbox_queued_by_conversation ON outbox (conversation_id, id) WHERE status = 'queued';
