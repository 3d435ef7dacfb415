-- An attempt after which a call is retried names the call's reservation and its number
-- in the call (1 for the first), and no two records may name the same attempt: its
-- write sent again after the answer was lost then finds the record instead of counting
-- the attempt twice (as migration 18 does for a call's last record, which names the
-- reservation it settles). Records written before this name no attempt. Keep sqlite/
-- and postgres/ in step.
ALTER TABLE usage_records ADD COLUMN attempt_of BIGINT;
ALTER TABLE usage_records ADD COLUMN attempt_number INTEGER;
CREATE UNIQUE INDEX usage_records_attempt ON usage_records (attempt_of, attempt_number) WHERE attempt_of IS NOT NULL;
