-- Usage records (one per Claude attempt that reached it) and chat threads.
-- Keep sqlite/ and postgres/ in step.
CREATE TABLE usage_records (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id                BIGINT NOT NULL REFERENCES users (id),
    deal_id                BIGINT REFERENCES deals (id),
    operation              TEXT   NOT NULL CHECK (operation IN ('chat', 'report', 'extraction', 'title')),
    model                  TEXT   NOT NULL,
    input_tokens           BIGINT NOT NULL,
    output_tokens          BIGINT NOT NULL,
    cache_creation_tokens  BIGINT NOT NULL,
    cache_read_tokens      BIGINT NOT NULL,
    estimated_input_tokens BIGINT NOT NULL,
    cost_microusd          BIGINT NOT NULL,
    default_price          BIGINT NOT NULL DEFAULT 0,
    latency_ms             BIGINT NOT NULL,
    outcome                TEXT   NOT NULL CHECK (outcome IN ('ok', 'busy', 'error')),
    request_id             TEXT,
    created_at             BIGINT NOT NULL
);
CREATE INDEX usage_records_user_time ON usage_records (user_id, created_at);
CREATE INDEX usage_records_deal_time ON usage_records (deal_id, created_at);
CREATE INDEX usage_records_time ON usage_records (created_at);

CREATE TABLE chat_threads (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    deal_id    BIGINT NOT NULL REFERENCES deals (id),
    user_id    BIGINT NOT NULL REFERENCES users (id),
    title      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX chat_threads_deal_user ON chat_threads (deal_id, user_id, updated_at);

CREATE TABLE chat_messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id  BIGINT NOT NULL REFERENCES chat_threads (id),
    role       TEXT   NOT NULL CHECK (role IN ('user', 'assistant')),
    content    TEXT   NOT NULL,
    usage_id   BIGINT REFERENCES usage_records (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX chat_messages_thread ON chat_messages (thread_id, id);
