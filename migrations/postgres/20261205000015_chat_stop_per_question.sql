-- A Stop names the question whose reply it stops (flagged on that message), so it
-- stops that reply only: not another tab's reply in the same conversation, nor the
-- next question's when it arrives after its own reply ended. It replaces the
-- conversation-wide "stop replies up to this question" of the previous migration.
-- Keep sqlite/ and postgres/ in step.
ALTER TABLE chat_messages ADD COLUMN stop_requested BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chat_threads DROP COLUMN stop_up_to_message;
