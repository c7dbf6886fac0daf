-- Migration 6: a showtime's seat-map version is 32 counters, not one (src/seatmap.rs), and its
-- count of sold seats is kept beside them. A seat belongs to slot `id % 32`; a write bumps the
-- slots of the seats it changes and stamps each seat with its slot's counter, and a payment or
-- a cancellation counts its seats in their slots' `sold`. One counter and one sold count per
-- showtime were a row every hold and every payment of the date locked until its commit: on
-- PostgreSQL, holds and payments of one date committed one at a time. Each slot starts at the
-- showtime's old counter, so every seat's stamp is within its slot's counter and a version a
-- client kept from before ("N.LAPSE": every slot at N) still names the same map; its sold count
-- is counted from the seats.
CREATE TABLE seat_versions (
    showtime_id INTEGER NOT NULL REFERENCES showtimes (id),
    slot        INTEGER NOT NULL CHECK (slot >= 0 AND slot < 32),
    counter     INTEGER NOT NULL CHECK (counter >= 0),
    sold        INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),
    PRIMARY KEY (showtime_id, slot)
) WITHOUT ROWID;
INSERT INTO seat_versions (showtime_id, slot, counter, sold)
WITH RECURSIVE k (slot) AS (SELECT 0 UNION ALL SELECT slot + 1 FROM k WHERE slot + 1 < 32)
SELECT s.id, k.slot, s.seat_version,
       (SELECT COUNT(*) FROM seats x WHERE x.showtime_id = s.id AND x.sold = 1 AND x.id % 32 = k.slot)
FROM showtimes s, k;
ALTER TABLE showtimes DROP COLUMN seat_version;
ALTER TABLE showtimes DROP COLUMN sold_seats;
