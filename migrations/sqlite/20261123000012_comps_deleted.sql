-- Deleting a comp hides it (deleted_at, Unix millis) instead of removing the row, so
-- the analyst can undo the delete and get the same sale back, with the same id and
-- place in the list. Hidden rows are kept: nothing purges them.
-- Keep sqlite/ and postgres/ in step.
ALTER TABLE comps ADD COLUMN deleted_at BIGINT;
