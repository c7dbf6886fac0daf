-- booking schema, migration 1. The one source of the schema: later changes are new migrations.
-- Times are INTEGER milliseconds since the Unix epoch (UTC). Money is INTEGER points (KRW).

-- Settings that belong to the database file (for example the JWT secret every process shares).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- The waiting room's single row of state: the admission frontier (highest entry id that was
-- admitted or skipped; an entry's position is id - frontier) and the admit-per-minute window.
CREATE TABLE queue_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    frontier        INTEGER NOT NULL DEFAULT 0 CHECK (frontier >= 0),
    window_start    INTEGER NOT NULL DEFAULT 0,
    window_admitted INTEGER NOT NULL DEFAULT 0 CHECK (window_admitted >= 0)
);
INSERT INTO queue_state (id) VALUES (1);

-- One row per place in line. The id is the sequence number (AUTOINCREMENT: never reused).
CREATE TABLE queue_entries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('waiting', 'active', 'expired')),
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    activated_at INTEGER,
    active_until INTEGER,
    CHECK (status <> 'active' OR (activated_at IS NOT NULL AND active_until IS NOT NULL))
);
-- At most one live entry per user.
CREATE UNIQUE INDEX queue_one_live_entry ON queue_entries (user_id) WHERE status IN ('waiting', 'active');
-- Counting the users active now is a range scan over at most max-active rows.
CREATE INDEX queue_active_until ON queue_entries (active_until) WHERE status = 'active';
-- The head of the line (and the next users to admit) without scanning expired rows.
CREATE INDEX queue_waiting ON queue_entries (id) WHERE status = 'waiting';

CREATE TABLE concerts (
    id    INTEGER PRIMARY KEY,
    title TEXT NOT NULL CHECK (length(title) > 0),
    venue TEXT NOT NULL DEFAULT ''
);

CREATE TABLE showtimes (
    id          INTEGER PRIMARY KEY,
    concert_id  INTEGER NOT NULL REFERENCES concerts (id),
    starts_at   INTEGER NOT NULL,
    total_seats INTEGER NOT NULL CHECK (total_seats > 0),
    sold_seats  INTEGER NOT NULL DEFAULT 0 CHECK (sold_seats BETWEEN 0 AND total_seats)
);
CREATE INDEX showtimes_by_concert ON showtimes (concert_id, starts_at);

-- A seat carries its current claim: the held or paid ticket (ticket_id), the hold's end
-- (held_until) and whether it is sold. A hold whose held_until is not after now is no claim.
CREATE TABLE seats (
    id          INTEGER PRIMARY KEY,
    showtime_id INTEGER NOT NULL REFERENCES showtimes (id),
    number      INTEGER NOT NULL CHECK (number > 0),
    price       INTEGER NOT NULL CHECK (price > 0),
    sold        INTEGER NOT NULL DEFAULT 0 CHECK (sold IN (0, 1)),
    ticket_id   INTEGER REFERENCES tickets (id),
    held_until  INTEGER,
    UNIQUE (showtime_id, number),
    CHECK (sold = 0 OR ticket_id IS NOT NULL)
);

CREATE TABLE tickets (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT    NOT NULL,
    showtime_id INTEGER NOT NULL REFERENCES showtimes (id),
    seat_id     INTEGER NOT NULL REFERENCES seats (id),
    price       INTEGER NOT NULL CHECK (price > 0),
    status      TEXT    NOT NULL CHECK (status IN ('held', 'paid', 'expired')),
    created_at  INTEGER NOT NULL,
    held_until  INTEGER NOT NULL,
    paid_at     INTEGER,
    CHECK ((status = 'paid') = (paid_at IS NOT NULL))
);
-- The last line of defence against double booking: one held-or-paid ticket per seat, ever.
CREATE UNIQUE INDEX tickets_one_live_per_seat ON tickets (seat_id) WHERE status IN ('held', 'paid');
-- A user's tickets, and their live holds per showtime (the hold limit), from one index: every
-- index a write touches at a random place (user ids are random) costs a page in the WAL. It
-- holds no column a payment or an expiry changes, so those leave it alone.
CREATE INDEX tickets_by_user ON tickets (user_id, showtime_id);
CREATE INDEX tickets_holds_by_showtime ON tickets (showtime_id, held_until) WHERE status = 'held';

CREATE TABLE wallets (
    user_id TEXT PRIMARY KEY,
    balance INTEGER NOT NULL CHECK (balance >= 0)
) WITHOUT ROWID;

CREATE TABLE payments (
    id        INTEGER PRIMARY KEY,
    user_id   TEXT    NOT NULL,
    ticket_id INTEGER NOT NULL UNIQUE REFERENCES tickets (id),
    amount    INTEGER NOT NULL CHECK (amount > 0),
    paid_at   INTEGER NOT NULL
);
-- A user's payments are found through their ledger rows (ledger_by_user, then the payment by
-- id): a second per-user index here would cost every payment one more random page.

-- Every change of a balance, append-only; a wallet's balance always equals the sum of its rows.
CREATE TABLE point_ledger (
    id            INTEGER PRIMARY KEY,
    user_id       TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('charge', 'payment', 'refund')),
    amount        INTEGER NOT NULL,
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    payment_id    INTEGER REFERENCES payments (id),
    created_at    INTEGER NOT NULL,
    CHECK ((kind = 'payment') = (amount < 0) AND amount <> 0),
    CHECK ((kind = 'payment') = (payment_id IS NOT NULL))
);
CREATE INDEX ledger_by_user ON point_ledger (user_id, id);
CREATE UNIQUE INDEX ledger_by_payment ON point_ledger (payment_id) WHERE payment_id IS NOT NULL;
CREATE TRIGGER point_ledger_append_only_update BEFORE UPDATE ON point_ledger
BEGIN SELECT RAISE(ABORT, 'point_ledger is append-only'); END;
CREATE TRIGGER point_ledger_append_only_delete BEFORE DELETE ON point_ledger
BEGIN SELECT RAISE(ABORT, 'point_ledger is append-only'); END;

-- Idempotency-Key records, scoped to the user: the request's fingerprint and the first response.
CREATE TABLE idempotency_keys (
    user_id    TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    request    TEXT    NOT NULL,
    response   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_by_age ON idempotency_keys (created_at);
