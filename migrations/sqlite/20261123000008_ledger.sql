-- The ledger. Running counters per budget scope and period, kept in the same transaction
-- as every usage record, so admission reads a few rows however long the history is.
-- Reservations belong to the ledger (renamed from budget_reservations) and carry what an
-- orphaned one is settled as. Usage that Claude billed but we could not read is flagged.
-- Keep sqlite/ and postgres/ in step.
CREATE TABLE usage_counters (
    scope         TEXT   NOT NULL,
    scope_id      BIGINT NOT NULL,
    period        TEXT   NOT NULL,
    tokens        BIGINT NOT NULL,
    cost_microusd BIGINT NOT NULL,
    calls         BIGINT NOT NULL,
    PRIMARY KEY (scope, scope_id, period)
);
INSERT INTO usage_counters (scope, scope_id, period, tokens, cost_microusd, calls)
    SELECT 'deal', deal_id, 'life', SUM(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens),
           SUM(cost_microusd), COUNT(*)
    FROM usage_records WHERE deal_id IS NOT NULL GROUP BY deal_id;
INSERT INTO usage_counters (scope, scope_id, period, tokens, cost_microusd, calls)
    SELECT 'user', user_id, 'day:' || day, SUM(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens),
           SUM(cost_microusd), SUM(calls)
    FROM usage_daily GROUP BY user_id, day;

ALTER TABLE budget_reservations RENAME TO usage_reservations;
ALTER TABLE usage_reservations ADD COLUMN operation TEXT NOT NULL DEFAULT 'chat';
ALTER TABLE usage_reservations ADD COLUMN model TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_reservations ADD COLUMN input_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_reservations ADD COLUMN output_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_reservations ADD COLUMN estimated_input_tokens BIGINT NOT NULL DEFAULT 0;
UPDATE usage_reservations SET input_tokens = tokens;
CREATE INDEX usage_reservations_expiry ON usage_reservations (expires_at);

ALTER TABLE usage_records ADD COLUMN usage_unknown BIGINT NOT NULL DEFAULT 0;
CREATE INDEX usage_records_calibration ON usage_records (model, operation, id);
ALTER TABLE usage_daily ADD COLUMN unknown_usage_calls BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup ADD COLUMN unknown_usage_calls BIGINT NOT NULL DEFAULT 0;
