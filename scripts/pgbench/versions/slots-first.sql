-- A hold with a version of K counters per showtime (rows of version_slots, the seat's slot its
-- id mod K), bumped first, as seatmap::bump is today.
-- pgbench -D base=FIRST_SEAT_ID -D per=SEATS_PER_CLIENT -D n=0 -D slots=K (scripts/bench-pg-versions.sh).
\set n :n + 1
\set sid :base + :client_id * :per + :n - 1
\set slot :sid % :slots
BEGIN;
SELECT showtime_id, price, (extract(epoch FROM now()) * 1000)::bigint AS now
  FROM seats WHERE id = :sid AND ticket_id IS NULL FOR UPDATE \gset
UPDATE version_slots SET counter = counter + 1 WHERE showtime_id = :showtime_id AND slot = :slot
  RETURNING counter AS v \gset
INSERT INTO tickets (user_id, showtime_id, seat_id, price, status, created_at, held_until)
  VALUES ('raw-' || :client_id, :showtime_id, :sid, :price, 'held', :now::bigint, :now::bigint + 300000)
  RETURNING id AS ticket \gset
UPDATE seats SET ticket_id = :ticket, held_until = :now::bigint + 300000, version = :v WHERE id = :sid;
COMMIT;
