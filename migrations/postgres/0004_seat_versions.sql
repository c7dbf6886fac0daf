-- Migration 4 on PostgreSQL: seat maps at scale (docs/API.md §6.1), as SQLite's
-- migrations/0004_seat_versions.sql. Every change of a seat's status bumps its showtime's seat
-- version and stamps the seat with it, so "what changed since version v" is an index range.
ALTER TABLE showtimes ADD COLUMN seat_version BIGINT NOT NULL DEFAULT 0 CHECK (seat_version >= 0);
ALTER TABLE seats ADD COLUMN version BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0);
CREATE INDEX seats_by_version ON seats (showtime_id, version);
-- Holds by their end, per showtime: the last lapse before now is one index seek.
CREATE INDEX seats_by_held_until ON seats (showtime_id, held_until) WHERE held_until IS NOT NULL;
