-- Conversations an analyst deletes are kept, hidden, so "Undo" can bring them back;
-- and how many messages a conversation had when Claude last titled it (0: never).
-- Keep sqlite/ and postgres/ in step.
ALTER TABLE chat_threads ADD COLUMN deleted_at BIGINT;
ALTER TABLE chat_threads ADD COLUMN titled_at_messages BIGINT NOT NULL DEFAULT 0;
