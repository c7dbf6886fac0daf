-- Migration 5: fewer index entries per ticket. A hold wrote five b-tree entries per ticket (the
-- row, one live ticket per seat, the user's tickets, the user's claims, the showtime's holds)
-- and its seat three more; a 4-seat hold is bound by those page writes.
-- * The user's tickets and the user's claims become one index that carries the status: the
--   list of a user's tickets is its prefix, and the claims on a showtime (the per-user limit)
--   are two seeks, (user, showtime, 'held') and (user, showtime, 'paid'), however long the
--   user's history.
-- * A showtime's holds are read from its seats (`seats_by_held_until`): every held ticket is
--   its seat's claim (`verify` checks it), so the seats name the same holds.
DROP INDEX tickets_claims_by_user;
DROP INDEX tickets_holds_by_showtime;
DROP INDEX tickets_by_user;
CREATE INDEX tickets_by_user ON tickets (user_id, showtime_id, status);
