-- A message dates its conversation's latest activity in the statement that stores it
-- (no second statement, no transaction of its own for a reply). Keep sqlite/ and
-- postgres/ in step.
CREATE FUNCTION chat_messages_date_thread() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE chat_threads SET updated_at = NEW.created_at WHERE id = NEW.thread_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER chat_messages_date_thread AFTER INSERT ON chat_messages
    FOR EACH ROW EXECUTE FUNCTION chat_messages_date_thread();
