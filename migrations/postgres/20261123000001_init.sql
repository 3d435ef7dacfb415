-- DealDesk schema, PostgreSQL flavour. Times are UTC epoch milliseconds (BIGINT) so the
-- same queries run on SQLite; keep the two migration folders in step.
CREATE TABLE users (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('analyst', 'admin')),
    active        BIGINT  NOT NULL DEFAULT 1,
    daily_token_budget BIGINT,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE deals (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT    NOT NULL,
    address       TEXT    NOT NULL DEFAULT '',
    property_type TEXT    NOT NULL,
    asking_price  BIGINT,
    notes         TEXT    NOT NULL DEFAULT '',
    token_budget  BIGINT,
    created_by    BIGINT  NOT NULL REFERENCES users (id),
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE TABLE login_failures (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email     TEXT   NOT NULL,
    failed_at BIGINT NOT NULL
);
CREATE INDEX login_failures_email_time ON login_failures (email, failed_at);

CREATE TABLE sessions (
    id         TEXT   PRIMARY KEY,
    data       TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
