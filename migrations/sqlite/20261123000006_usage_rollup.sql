-- Per-dimension daily rollups: for each usage record, one row per dimension (its user,
-- its deal, its model, its operation) is incremented, so the unfiltered dashboard reads
-- a few thousand rows however many records there are. `key` is the dimension's value
-- as text (ids for users and deals, 0 for "no deal"). Keep sqlite/ and postgres/ in step.
CREATE TABLE usage_rollup (
    dimension             TEXT   NOT NULL,
    day                   TEXT   NOT NULL,
    key                   TEXT   NOT NULL,
    calls                 BIGINT NOT NULL,
    failed_calls          BIGINT NOT NULL,
    input_tokens          BIGINT NOT NULL,
    output_tokens         BIGINT NOT NULL,
    cache_creation_tokens BIGINT NOT NULL,
    cache_read_tokens     BIGINT NOT NULL,
    cost_microusd         BIGINT NOT NULL,
    default_priced_calls  BIGINT NOT NULL,
    PRIMARY KEY (dimension, day, key)
);
