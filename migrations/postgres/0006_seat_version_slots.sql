-- Migration 6 on PostgreSQL, as SQLite's migrations/0006_seat_version_slots.sql (which says
-- why): a showtime's seat-map version is 32 counter rows, with its sold count kept in the same
-- rows, so that holds and payments of one date that fall in different slots commit side by side
-- instead of queueing on the showtime row.
CREATE TABLE seat_versions (
    showtime_id BIGINT NOT NULL REFERENCES showtimes (id),
    slot        BIGINT NOT NULL CHECK (slot >= 0 AND slot < 32),
    counter     BIGINT NOT NULL CHECK (counter >= 0),
    sold        BIGINT NOT NULL DEFAULT 0 CHECK (sold >= 0),
    PRIMARY KEY (showtime_id, slot)
);
INSERT INTO seat_versions (showtime_id, slot, counter, sold)
SELECT s.id, k.slot, s.seat_version,
       (SELECT COUNT(*) FROM seats x WHERE x.showtime_id = s.id AND x.sold = 1 AND x.id % 32 = k.slot)
FROM showtimes s, generate_series(0, 31) AS k (slot);
ALTER TABLE showtimes DROP COLUMN seat_version;
ALTER TABLE showtimes DROP COLUMN sold_seats;
