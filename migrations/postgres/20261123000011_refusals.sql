-- Calls refused before reaching Claude (a budget, a firm cap, a rate limit, the cooldown,
-- the per-call size): counted per day, user, deal, operation and kind for the dashboard,
-- never usage (nothing was billed). One row per combination, so a user hammering Send
-- adds to a count instead of a row per refusal. deal_id 0: no deal.
-- Keep sqlite/ and postgres/ in step.
CREATE TABLE admission_refusals (
    day         TEXT   NOT NULL,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    deal_id     BIGINT NOT NULL,
    operation   TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    refused     BIGINT NOT NULL,
    latest_at   BIGINT NOT NULL,
    PRIMARY KEY (day, user_id, deal_id, operation, kind)
);
