-- Hardening: sessions know their user (so a password reset, deactivation or role change
-- ends them at once), and sign-in attempts are counted per key (an email or a client
-- address) in one row each, reserved atomically before the password is checked.
-- Keep sqlite/ and postgres/ in step.
ALTER TABLE sessions ADD COLUMN user_id BIGINT;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_throttle (
    key          TEXT   PRIMARY KEY,
    window_start BIGINT NOT NULL,
    attempts     BIGINT NOT NULL
);
CREATE INDEX login_throttle_window ON login_throttle (window_start);

DROP TABLE login_failures;

-- Secrets the server generates once and every instance shares (e.g. the key of the
-- opaque user id sent to Claude). Hex-encoded random bytes.
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
