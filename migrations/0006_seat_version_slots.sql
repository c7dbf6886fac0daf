-- Migration 6: a showtime's seat-map version is 32 counters, not one (src/seatmap.rs). A seat
-- belongs to slot `id % 32`; a write bumps the slots of the seats it changes and stamps each
-- seat with its slot's counter. One counter per showtime was a row every hold of the date
-- locked until its commit: on PostgreSQL, holds of one date committed one at a time. Each slot
-- starts at the showtime's old counter, so every seat's stamp is within its slot's counter and
-- a version a client kept from before ("N.LAPSE": every slot at N) still names the same map.
CREATE TABLE seat_versions (
    showtime_id INTEGER NOT NULL REFERENCES showtimes (id),
    slot        INTEGER NOT NULL CHECK (slot >= 0 AND slot < 32),
    counter     INTEGER NOT NULL CHECK (counter >= 0),
    PRIMARY KEY (showtime_id, slot)
) WITHOUT ROWID;
INSERT INTO seat_versions (showtime_id, slot, counter)
WITH RECURSIVE k (slot) AS (SELECT 0 UNION ALL SELECT slot + 1 FROM k WHERE slot + 1 < 32)
SELECT s.id, k.slot, s.seat_version FROM showtimes s, k;
ALTER TABLE showtimes DROP COLUMN seat_version;
