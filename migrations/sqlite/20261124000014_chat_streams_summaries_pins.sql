-- Streamed chat replies: a reply the analyst stopped is billed for what was written
-- and flagged, on its usage record and on its message. A Stop is asked for through the
-- conversation's row (the newest question whose reply stops), so it reaches whichever
-- instance is streaming the reply.
-- Summaries are kept as messages of kind 'summary' (the call window starts from the
-- latest) and recorded as operation 'summary'; a pinned message is always sent with
-- the conversation.
-- SQLite cannot widen usage_records' CHECK on `operation` in place, nor inside a
-- migration's transaction (rebuilding a table that others reference needs foreign keys
-- off): `Db::migrate` rebuilds it after the migrations, once (db.rs).
-- Keep sqlite/ and postgres/ in step.
ALTER TABLE usage_records ADD COLUMN stopped BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chat_messages ADD COLUMN stopped BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chat_messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
ALTER TABLE chat_messages ADD COLUMN pinned BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chat_threads ADD COLUMN stop_up_to_message BIGINT;
