-- A Stop names the question whose reply it stops (flagged on that message), so it
-- stops that reply only: not another tab's reply in the same conversation, nor the
-- next question's when it arrives after its own reply ended. It replaces the
-- conversation-wide "stop replies up to this question" of the previous migration.
-- Keep sqlite/ and postgres/ in step.
ALTER TABLE chat_messages ADD COLUMN stop_requested BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chat_threads DROP COLUMN stop_up_to_message;
-- A summary records the last message it sums up: later calls carry the messages after
-- that one, so a reply stored after the summary (its question was still being answered)
-- and messages a summary could not take are never lost. NULL (older summaries): the
-- summary's own id.
ALTER TABLE chat_messages ADD COLUMN summary_through BIGINT;
