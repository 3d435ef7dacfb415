-- A message dates its conversation's latest activity in the statement that stores it
-- (no second statement, no transaction of its own for a reply). Keep sqlite/ and
-- postgres/ in step.
CREATE TRIGGER chat_messages_date_thread AFTER INSERT ON chat_messages
BEGIN
    UPDATE chat_threads SET updated_at = NEW.created_at WHERE id = NEW.thread_id;
END;
