-- Budget reservations held by calls in flight, and the chat cooldown stamp.
-- Keep sqlite/ and postgres/ in step.
CREATE TABLE budget_reservations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    deal_id    BIGINT NOT NULL REFERENCES deals (id),
    tokens     BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX budget_reservations_deal ON budget_reservations (deal_id, expires_at);
CREATE INDEX budget_reservations_user ON budget_reservations (user_id, expires_at);

ALTER TABLE users ADD COLUMN last_chat_at BIGINT;
