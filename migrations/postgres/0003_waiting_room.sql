-- Migration 3 on PostgreSQL: the waiting room of a real sale (docs/API.md §7), as SQLite's
-- migrations/0003_waiting_room.sql. Places in line (`seq`) apart from entry ids, the `prequeue`
-- status and its random draw, the kept counts and the live controls in queue_state.

ALTER TABLE queue_entries DROP CONSTRAINT queue_entries_status;
ALTER TABLE queue_entries ADD COLUMN seq BIGINT UNIQUE, ADD COLUMN shuffle_key BIGINT;
UPDATE queue_entries SET seq = id;
ALTER TABLE queue_entries
    ADD CONSTRAINT queue_entries_status
        CHECK (status IN ('prequeue', 'waiting', 'active', 'expired')),
    ADD CONSTRAINT queue_entries_prequeue
        CHECK ((status = 'prequeue') = (shuffle_key IS NOT NULL AND seq IS NULL)),
    ADD CONSTRAINT queue_entries_placed
        CHECK (status NOT IN ('waiting', 'active') OR seq IS NOT NULL);

-- At most one live entry per user.
DROP INDEX queue_one_live_entry;
CREATE UNIQUE INDEX queue_one_live_entry ON queue_entries (user_id)
    WHERE status IN ('prequeue', 'waiting', 'active');
-- The head of the line (and the next users to admit), by place.
DROP INDEX queue_waiting;
CREATE INDEX queue_waiting ON queue_entries (seq) WHERE status = 'waiting';
-- The prequeue in the order of its random draw: placed from the front at the opening.
CREATE INDEX queue_prequeue ON queue_entries (shuffle_key, id) WHERE status = 'prequeue';

-- The waiting room's state, one row: the last place handed out, the counts kept as they
-- change, the opening and its placing, the live controls (NULL: each server's own flags), and
-- how many users were ever admitted.
ALTER TABLE queue_state
    ADD COLUMN next_seq         BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN active_count     BIGINT NOT NULL DEFAULT 0 CHECK (active_count >= 0),
    ADD COLUMN prequeue_count   BIGINT NOT NULL DEFAULT 0 CHECK (prequeue_count >= 0),
    ADD COLUMN opens_at         BIGINT,
    ADD COLUMN placing_base     BIGINT,
    ADD COLUMN placing_done     BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN max_active       BIGINT CHECK (max_active >= 0),
    ADD COLUMN admit_per_minute BIGINT CHECK (admit_per_minute >= 0),
    ADD COLUMN paused           BIGINT NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    ADD COLUMN admitted_total   BIGINT NOT NULL DEFAULT 0;
UPDATE queue_state SET
    next_seq = (SELECT COALESCE(MAX(id), 0) FROM queue_entries),
    active_count = (SELECT COUNT(*) FROM queue_entries WHERE status = 'active'),
    admitted_total = (SELECT COUNT(*) FROM queue_entries WHERE activated_at IS NOT NULL);
