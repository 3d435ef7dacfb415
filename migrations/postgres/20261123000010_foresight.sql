-- Foresight: webhook deliveries of budget alerts, the model a call asked for and what a
-- cheaper model saved, and each user's choice of budget-aware model selection.
-- Keep sqlite/ and postgres/ in step.
CREATE TABLE alert_deliveries (
    alert_id        BIGINT PRIMARY KEY,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    delivered_at    BIGINT,
    failed_at       BIGINT,
    last_status     BIGINT,
    last_error      TEXT
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (delivered_at, next_attempt_at);
CREATE INDEX budget_alerts_scope ON budget_alerts (scope, scope_id, id);

ALTER TABLE usage_records ADD COLUMN requested_model TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_records ADD COLUMN savings_microusd BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN savings_microusd BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup ADD COLUMN savings_microusd BIGINT NOT NULL DEFAULT 0;

-- NULL: the firm's setting applies; 0 off, 1 on.
ALTER TABLE users ADD COLUMN model_choice BIGINT;
