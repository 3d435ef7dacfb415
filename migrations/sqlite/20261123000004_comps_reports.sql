-- Comparable sales extracted for a deal, and investment memo versions.
-- Keep sqlite/ and postgres/ in step.
CREATE TABLE comps (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    deal_id        BIGINT NOT NULL REFERENCES deals (id),
    property_name  TEXT   NOT NULL,
    address        TEXT   NOT NULL,
    sale_date      TEXT,
    sale_price     BIGINT,
    building_sf    BIGINT,
    price_per_sf   REAL,
    cap_rate       REAL,
    buyer          TEXT   NOT NULL,
    seller         TEXT   NOT NULL,
    notes          TEXT   NOT NULL,
    source_excerpt TEXT   NOT NULL,
    created_by     BIGINT NOT NULL REFERENCES users (id),
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX comps_deal ON comps (deal_id);

CREATE TABLE reports (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    deal_id    BIGINT NOT NULL REFERENCES deals (id),
    author_id  BIGINT NOT NULL REFERENCES users (id),
    markdown   TEXT   NOT NULL,
    usage_id   BIGINT REFERENCES usage_records (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX reports_deal ON reports (deal_id, id);
