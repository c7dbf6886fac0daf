-- Migration 5 on PostgreSQL, as SQLite's migrations/0005_ticket_indexes.sql (which says why):
-- fewer index entries per ticket.
DROP INDEX tickets_claims_by_user;
DROP INDEX tickets_holds_by_showtime;
DROP INDEX tickets_by_user;
CREATE INDEX tickets_by_user ON tickets (user_id, showtime_id, status);
