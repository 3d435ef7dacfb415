-- A call's last usage record names the reservation it settled (an expired reservation's
-- settlement names it too), and no two records may name the same one: a record write
-- retried after its answer was lost, or a call whose reservation expired and was settled
-- while it ran, can then never count the call twice. Records written before this, and
-- the attempts a call retries, name none. Reservation ids are never reused (a sequence;
-- AUTOINCREMENT on SQLite), so a name stays unique. Keep sqlite/ and postgres/ in step.
ALTER TABLE usage_records ADD COLUMN reservation_id BIGINT;
CREATE UNIQUE INDEX usage_records_reservation ON usage_records (reservation_id) WHERE reservation_id IS NOT NULL;
