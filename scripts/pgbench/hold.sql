-- The raw limit of a hold on PostgreSQL, for pgbench (scripts/bench-pg.sh): the shape of
-- POST /tickets written directly on the booking schema — lock a free seat, insert its held
-- ticket, point the seat at it — with none of the booking rules around it (no queue entry,
-- no showtime checks, no per-user count, no seat-map version bump).
--
-- Each client takes the seats of its own range in turn, so every transaction finds a free seat
-- and no two clients want one row: pgbench -D base=FIRST_SEAT_ID -D per=SEATS_PER_CLIENT -D n=0.
-- Running out of seats fails the client (\gset wants one row), never repeats a seat.
\set n :n + 1
\set sid :base + :client_id * :per + :n - 1
BEGIN;
SELECT showtime_id, price, (extract(epoch FROM now()) * 1000)::bigint AS now
  FROM seats WHERE id = :sid AND ticket_id IS NULL FOR UPDATE \gset
INSERT INTO tickets (user_id, showtime_id, seat_id, price, status, created_at, held_until)
  VALUES ('raw-' || :client_id, :showtime_id, :sid, :price, 'held', :now::bigint, :now::bigint + 300000)
  RETURNING id AS ticket \gset
UPDATE seats SET ticket_id = :ticket, held_until = :now::bigint + 300000, version = :n WHERE id = :sid;
COMMIT;
