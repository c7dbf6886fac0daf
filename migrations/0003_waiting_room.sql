-- Migration 3: the waiting room of a real sale (docs/API.md §7). Places in line become a
-- sequence of their own (`seq`), so that a prequeue can be placed in a random order at the
-- opening; the counts admission needs are kept as they change; the live controls live here.

-- Queue entries are rebuilt (SQLite cannot change a CHECK in place): the `prequeue` status, the
-- place in line (`seq`, NULL until a prequeue entry is placed) and the prequeue's random draw.
CREATE TABLE queue_entries_v3 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('prequeue', 'waiting', 'active', 'expired')),
    seq          INTEGER UNIQUE,
    shuffle_key  INTEGER,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    activated_at INTEGER,
    active_until INTEGER,
    CHECK (status <> 'active' OR (activated_at IS NOT NULL AND active_until IS NOT NULL)),
    CHECK ((status = 'prequeue') = (shuffle_key IS NOT NULL AND seq IS NULL)),
    CHECK (status NOT IN ('waiting', 'active') OR seq IS NOT NULL)
);
INSERT INTO queue_entries_v3 (id, user_id, status, seq, created_at, last_seen_at, activated_at,
                              active_until)
SELECT id, user_id, status, id, created_at, last_seen_at, activated_at, active_until
FROM queue_entries;
DROP TABLE queue_entries;
ALTER TABLE queue_entries_v3 RENAME TO queue_entries;

-- At most one live entry per user.
CREATE UNIQUE INDEX queue_one_live_entry ON queue_entries (user_id)
    WHERE status IN ('prequeue', 'waiting', 'active');
-- Active sessions by their end: lapsed ones are retired from the front (amortized O(1)).
CREATE INDEX queue_active_until ON queue_entries (active_until) WHERE status = 'active';
-- The head of the line (and the next users to admit), by place.
CREATE INDEX queue_waiting ON queue_entries (seq) WHERE status = 'waiting';
-- The prequeue in the order of its random draw: placed from the front at the opening.
CREATE INDEX queue_prequeue ON queue_entries (shuffle_key, id) WHERE status = 'prequeue';

-- The waiting room's state, one row: the last place handed out, the counts kept as they
-- change, the opening and its placing, the live controls (NULL: each server's own flags), and
-- how many users were ever admitted.
ALTER TABLE queue_state ADD COLUMN next_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue_state ADD COLUMN active_count INTEGER NOT NULL DEFAULT 0 CHECK (active_count >= 0);
ALTER TABLE queue_state ADD COLUMN prequeue_count INTEGER NOT NULL DEFAULT 0 CHECK (prequeue_count >= 0);
ALTER TABLE queue_state ADD COLUMN opens_at INTEGER;
ALTER TABLE queue_state ADD COLUMN placing_base INTEGER;
ALTER TABLE queue_state ADD COLUMN placing_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue_state ADD COLUMN max_active INTEGER CHECK (max_active >= 0);
ALTER TABLE queue_state ADD COLUMN admit_per_minute INTEGER CHECK (admit_per_minute >= 0);
ALTER TABLE queue_state ADD COLUMN paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1));
ALTER TABLE queue_state ADD COLUMN admitted_total INTEGER NOT NULL DEFAULT 0;
UPDATE queue_state SET
    next_seq = (SELECT COALESCE(MAX(id), 0) FROM queue_entries),
    active_count = (SELECT COUNT(*) FROM queue_entries WHERE status = 'active'),
    admitted_total = (SELECT COUNT(*) FROM queue_entries WHERE activated_at IS NOT NULL);
