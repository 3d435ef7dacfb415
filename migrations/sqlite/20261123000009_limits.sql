-- Limits: a dated price book, money budgets per user per month, firm-wide caps, rate
-- limits, budget alerts, an audit log of every admin change, and adjustments an operator
-- makes to a budget window (records are never deleted). Keep sqlite/ and postgres/ in step.
CREATE TABLE model_prices (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    model                     TEXT   NOT NULL,
    effective_from            BIGINT NOT NULL,
    input_micro               BIGINT NOT NULL,
    output_micro              BIGINT NOT NULL,
    cache_write_5m_micro      BIGINT NOT NULL,
    cache_write_1h_micro      BIGINT NOT NULL,
    cache_read_micro          BIGINT NOT NULL,
    long_above_tokens         BIGINT,
    long_input_micro          BIGINT,
    long_output_micro         BIGINT,
    long_cache_write_5m_micro BIGINT,
    long_cache_write_1h_micro BIGINT,
    long_cache_read_micro     BIGINT,
    created_by                BIGINT,
    created_at                BIGINT NOT NULL,
    UNIQUE (model, effective_from)
);

CREATE TABLE budget_alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    scope           TEXT   NOT NULL,
    scope_id        BIGINT NOT NULL,
    period          TEXT   NOT NULL,
    level           TEXT   NOT NULL,
    used            BIGINT NOT NULL,
    budget          BIGINT NOT NULL,
    unit            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    acknowledged_by BIGINT,
    acknowledged_at BIGINT,
    UNIQUE (scope, scope_id, period, level)
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id  BIGINT,
    actor     TEXT   NOT NULL,
    at        BIGINT NOT NULL,
    subject   TEXT   NOT NULL,
    old_value TEXT   NOT NULL,
    new_value TEXT   NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE usage_adjustments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    scope         TEXT   NOT NULL,
    scope_id      BIGINT NOT NULL,
    period        TEXT   NOT NULL,
    tokens        BIGINT NOT NULL,
    cost_microusd BIGINT NOT NULL,
    reason        TEXT   NOT NULL,
    actor         TEXT   NOT NULL,
    at            BIGINT NOT NULL
);

ALTER TABLE usage_records ADD COLUMN cache_creation_1h_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_reservations ADD COLUMN cost_microusd BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN monthly_budget_microusd BIGINT;

-- Running counters of the new scopes, from what is recorded so far: each user's calendar
-- month, and the firm's hour (UTC hour number), day and month.
INSERT INTO usage_counters (scope, scope_id, period, tokens, cost_microusd, calls)
    SELECT 'user', user_id, 'month:' || SUBSTR(day, 1, 7),
           SUM(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens), SUM(cost_microusd), SUM(calls)
    FROM usage_daily GROUP BY user_id, SUBSTR(day, 1, 7);
INSERT INTO usage_counters (scope, scope_id, period, tokens, cost_microusd, calls)
    SELECT 'firm', 0, 'day:' || day,
           SUM(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens), SUM(cost_microusd), SUM(calls)
    FROM usage_daily GROUP BY day;
INSERT INTO usage_counters (scope, scope_id, period, tokens, cost_microusd, calls)
    SELECT 'firm', 0, 'month:' || SUBSTR(day, 1, 7),
           SUM(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens), SUM(cost_microusd), SUM(calls)
    FROM usage_daily GROUP BY SUBSTR(day, 1, 7);
INSERT INTO usage_counters (scope, scope_id, period, tokens, cost_microusd, calls)
    SELECT 'firm', 0, 'hour:' || CAST(created_at / 3600000 AS TEXT),
           SUM(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens), SUM(cost_microusd), COUNT(*)
    FROM usage_records GROUP BY created_at / 3600000;

-- Admissions of calls while a firm-wide cap is set are serialised on this row.
CREATE TABLE firm_lock (
    id BIGINT PRIMARY KEY,
    n  BIGINT NOT NULL
);
INSERT INTO firm_lock (id, n) VALUES (1, 0);

-- The limits an admin set on /admin/limits (one JSON document), over Leptos.toml's.
CREATE TABLE limit_settings (
    name       TEXT   PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_by BIGINT,
    updated_at BIGINT NOT NULL
);

-- Calls each user started per minute (`minute:N`) and per local day (`day:YYYY-MM-DD`).
CREATE TABLE request_counters (
    user_id  BIGINT NOT NULL,
    period   TEXT   NOT NULL,
    requests BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, period)
);
CREATE INDEX request_counters_age ON request_counters (created_at);
