-- booking schema on PostgreSQL, migration 1: schema.sql (SQLite's migration 1) in PostgreSQL's
-- dialect, the same tables, columns, constraints, indexes and triggers. Every stored integer is
-- a BIGINT: times are milliseconds since the Unix epoch (UTC), money is points (KRW). Ids are
-- identity columns (never reused). Constraints are named where a later migration replaces them.

-- Settings that belong to the database (for example the JWT secret every process shares).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- The waiting room's single row of state: the admission frontier (highest place that was
-- admitted or skipped; a place's position is seq - frontier) and the admit-per-minute window.
CREATE TABLE queue_state (
    id              BIGINT PRIMARY KEY CHECK (id = 1),
    frontier        BIGINT NOT NULL DEFAULT 0 CHECK (frontier >= 0),
    window_start    BIGINT NOT NULL DEFAULT 0,
    window_admitted BIGINT NOT NULL DEFAULT 0 CHECK (window_admitted >= 0)
);
INSERT INTO queue_state (id) VALUES (1);

-- One row per place in line.
CREATE TABLE queue_entries (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      TEXT   NOT NULL,
    status       TEXT   NOT NULL
                 CONSTRAINT queue_entries_status CHECK (status IN ('waiting', 'active', 'expired')),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    activated_at BIGINT,
    active_until BIGINT,
    CHECK (status <> 'active' OR (activated_at IS NOT NULL AND active_until IS NOT NULL))
);
-- At most one live entry per user.
CREATE UNIQUE INDEX queue_one_live_entry ON queue_entries (user_id) WHERE status IN ('waiting', 'active');
CREATE INDEX queue_active_until ON queue_entries (active_until) WHERE status = 'active';
CREATE INDEX queue_waiting ON queue_entries (id) WHERE status = 'waiting';

CREATE TABLE concerts (
    id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title TEXT NOT NULL CHECK (length(title) > 0),
    venue TEXT NOT NULL DEFAULT ''
);

CREATE TABLE showtimes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    concert_id  BIGINT NOT NULL REFERENCES concerts (id),
    starts_at   BIGINT NOT NULL,
    total_seats BIGINT NOT NULL CHECK (total_seats > 0),
    sold_seats  BIGINT NOT NULL DEFAULT 0 CHECK (sold_seats BETWEEN 0 AND total_seats)
);
CREATE INDEX showtimes_by_concert ON showtimes (concert_id, starts_at);

-- A seat carries its current claim: the held or paid ticket (ticket_id), the hold's end
-- (held_until) and whether it is sold. A hold whose held_until is not after now is no claim.
-- (Its foreign key to tickets is added once tickets exists.)
CREATE TABLE seats (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    showtime_id BIGINT NOT NULL REFERENCES showtimes (id),
    number      BIGINT NOT NULL CHECK (number > 0),
    price       BIGINT NOT NULL CHECK (price > 0),
    sold        BIGINT NOT NULL DEFAULT 0 CHECK (sold IN (0, 1)),
    ticket_id   BIGINT,
    held_until  BIGINT,
    UNIQUE (showtime_id, number),
    CHECK (sold = 0 OR ticket_id IS NOT NULL)
);

CREATE TABLE tickets (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     TEXT   NOT NULL,
    showtime_id BIGINT NOT NULL REFERENCES showtimes (id),
    seat_id     BIGINT NOT NULL REFERENCES seats (id),
    price       BIGINT NOT NULL CHECK (price > 0),
    status      TEXT   NOT NULL
                CONSTRAINT tickets_status CHECK (status IN ('held', 'paid', 'expired')),
    created_at  BIGINT NOT NULL,
    held_until  BIGINT NOT NULL,
    paid_at     BIGINT,
    CONSTRAINT tickets_paid CHECK ((status = 'paid') = (paid_at IS NOT NULL))
);
ALTER TABLE seats ADD FOREIGN KEY (ticket_id) REFERENCES tickets (id);
-- The last line of defence against double booking: one held-or-paid ticket per seat, ever.
CREATE UNIQUE INDEX tickets_one_live_per_seat ON tickets (seat_id) WHERE status IN ('held', 'paid');
CREATE INDEX tickets_by_user ON tickets (user_id, showtime_id);
CREATE INDEX tickets_holds_by_showtime ON tickets (showtime_id, held_until) WHERE status = 'held';

CREATE TABLE wallets (
    user_id TEXT PRIMARY KEY,
    balance BIGINT NOT NULL CHECK (balance >= 0)
);

CREATE TABLE payments (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id   TEXT   NOT NULL,
    ticket_id BIGINT NOT NULL UNIQUE REFERENCES tickets (id),
    amount    BIGINT NOT NULL CHECK (amount > 0),
    paid_at   BIGINT NOT NULL
);

-- Every change of a balance, append-only; a wallet's balance always equals the sum of its rows.
CREATE TABLE point_ledger (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       TEXT   NOT NULL,
    kind          TEXT   NOT NULL CHECK (kind IN ('charge', 'payment', 'refund')),
    amount        BIGINT NOT NULL,
    balance_after BIGINT NOT NULL CHECK (balance_after >= 0),
    payment_id    BIGINT REFERENCES payments (id),
    created_at    BIGINT NOT NULL,
    CHECK ((kind = 'payment') = (amount < 0) AND amount <> 0),
    CHECK ((kind = 'payment') = (payment_id IS NOT NULL))
);
CREATE INDEX ledger_by_user ON point_ledger (user_id, id);
CREATE UNIQUE INDEX ledger_by_payment ON point_ledger (payment_id) WHERE payment_id IS NOT NULL;
CREATE FUNCTION point_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'point_ledger is append-only' USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER point_ledger_append_only_update BEFORE UPDATE ON point_ledger
    FOR EACH ROW EXECUTE FUNCTION point_ledger_append_only();
CREATE TRIGGER point_ledger_append_only_delete BEFORE DELETE ON point_ledger
    FOR EACH ROW EXECUTE FUNCTION point_ledger_append_only();
CREATE TRIGGER point_ledger_append_only_truncate BEFORE TRUNCATE ON point_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION point_ledger_append_only();

-- Idempotency-Key records, scoped to the user: the request's fingerprint and the first response.
CREATE TABLE idempotency_keys (
    user_id    TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    request    TEXT   NOT NULL,
    response   TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_by_age ON idempotency_keys (created_at);
