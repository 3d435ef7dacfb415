-- Daily usage aggregates per user, deal, model and operation, maintained in the same
-- transaction as each usage record; dashboards read these, never the raw records.
-- `day` is the local date in time.zone; deal_id 0 stands for "no deal" (a key column
-- cannot be NULL and still conflict). Keep sqlite/ and postgres/ in step.
CREATE TABLE usage_daily (
    day                   TEXT   NOT NULL,
    user_id               BIGINT NOT NULL,
    deal_id               BIGINT NOT NULL,
    model                 TEXT   NOT NULL,
    operation             TEXT   NOT NULL,
    calls                 BIGINT NOT NULL,
    failed_calls          BIGINT NOT NULL,
    input_tokens          BIGINT NOT NULL,
    output_tokens         BIGINT NOT NULL,
    cache_creation_tokens BIGINT NOT NULL,
    cache_read_tokens     BIGINT NOT NULL,
    cost_microusd         BIGINT NOT NULL,
    default_priced_calls  BIGINT NOT NULL,
    PRIMARY KEY (day, user_id, deal_id, model, operation)
);
CREATE INDEX usage_daily_user ON usage_daily (user_id, day);
CREATE INDEX usage_daily_deal ON usage_daily (deal_id, day);
