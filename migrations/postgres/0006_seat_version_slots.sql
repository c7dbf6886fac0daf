-- Migration 6 on PostgreSQL, as SQLite's migrations/0006_seat_version_slots.sql (which says
-- why): a showtime's seat-map version is 32 counter rows, so that holds of one date that fall
-- in different slots commit side by side instead of queueing on one row.
CREATE TABLE seat_versions (
    showtime_id BIGINT NOT NULL REFERENCES showtimes (id),
    slot        BIGINT NOT NULL CHECK (slot >= 0 AND slot < 32),
    counter     BIGINT NOT NULL CHECK (counter >= 0),
    PRIMARY KEY (showtime_id, slot)
);
INSERT INTO seat_versions (showtime_id, slot, counter)
SELECT s.id, k.slot, s.seat_version FROM showtimes s, generate_series(0, 31) AS k (slot);
ALTER TABLE showtimes DROP COLUMN seat_version;
