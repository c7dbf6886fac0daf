-- The raw limit of a hold on PostgreSQL, for pgbench (scripts/bench-pg.sh): the shape of
-- POST /tickets written directly on the booking schema — lock a free seat, insert its held
-- ticket, point the seat at it — with none of the booking rules around it (no queue entry,
-- no showtime checks, no per-user count).
--
-- Each client takes the seats of its own range in turn, so every transaction finds a free seat
-- and no two clients want one row: pgbench -D base=FIRST_SEAT_ID -D per=SEATS_PER_CLIENT -D n=0.
-- Running out of seats fails the client (\gset wants one row), never repeats a seat.
--
-- -D version=V chooses the seat-map version bump (scripts/bench-pg-versions.sh compares them):
--   0 none (the raw limit; scripts/bench-pg.sh);
--   2 one of the first K counter rows of the showtime's (seat_versions; the seat's slot taken
--     as its id mod K, -D slots=K), bumped before the insert: K = 32 is seatmap::bump today,
--     K = 1 the one counter per showtime of schema versions 4 and 5;
--   3 the same, bumped last, after the seat is updated.
\set n :n + 1
\set sid :base + :client_id * :per + :n - 1
\set slot :sid % :slots
\set v :n
BEGIN;
SELECT showtime_id, price, (extract(epoch FROM now()) * 1000)::bigint AS now
  FROM seats WHERE id = :sid AND ticket_id IS NULL FOR UPDATE \gset
\if :version = 2
UPDATE seat_versions SET counter = counter + 1 WHERE showtime_id = :showtime_id AND slot = :slot
  RETURNING counter AS v \gset
\endif
INSERT INTO tickets (user_id, showtime_id, seat_id, price, status, created_at, held_until)
  VALUES ('raw-' || :client_id, :showtime_id, :sid, :price, 'held', :now::bigint, :now::bigint + 300000)
  RETURNING id AS ticket \gset
UPDATE seats SET ticket_id = :ticket, held_until = :now::bigint + 300000, version = :v WHERE id = :sid;
\if :version = 3
UPDATE seat_versions SET counter = counter + 1 WHERE showtime_id = :showtime_id AND slot = :slot
  RETURNING counter AS v \gset
UPDATE seats SET version = :v WHERE id = :sid;
\endif
COMMIT;
