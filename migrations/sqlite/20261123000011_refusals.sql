-- Calls refused before reaching Claude (a budget, a firm cap, a rate limit, the cooldown,
-- the per-call size): events for the dashboard, never usage (nothing was billed).
-- Keep sqlite/ and postgres/ in step.
CREATE TABLE admission_refusals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    deal_id     BIGINT REFERENCES deals (id),
    operation   TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    day         TEXT   NOT NULL
);
CREATE INDEX admission_refusals_day ON admission_refusals (day);
