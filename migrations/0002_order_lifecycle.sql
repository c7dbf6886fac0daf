-- Migration 2: the order lifecycle (docs/API.md §6). Tickets can be released and cancelled,
-- holds extended, several tickets paid at once; showtimes get a sale opening and can be called
-- off; refunds are ledger rows naming their ticket.

-- Tickets are rebuilt (SQLite cannot change a CHECK in place): two more statuses, the payment
-- that paid a ticket, how often its hold was extended, and a cancellation's refund and fee.
CREATE TABLE tickets_v2 (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT    NOT NULL,
    showtime_id INTEGER NOT NULL REFERENCES showtimes (id),
    seat_id     INTEGER NOT NULL REFERENCES seats (id),
    price       INTEGER NOT NULL CHECK (price > 0),
    status      TEXT    NOT NULL
                CHECK (status IN ('held', 'paid', 'expired', 'released', 'cancelled')),
    created_at  INTEGER NOT NULL,
    held_until  INTEGER NOT NULL,
    extensions  INTEGER NOT NULL DEFAULT 0 CHECK (extensions >= 0),
    paid_at     INTEGER,
    payment_id  INTEGER REFERENCES payments (id),
    ended_at    INTEGER,
    refund      INTEGER CHECK (refund >= 0),
    fee         INTEGER CHECK (fee >= 0),
    -- A paid ticket, and a cancelled one (it was paid first), carry their payment.
    CHECK ((status IN ('paid', 'cancelled')) = (paid_at IS NOT NULL AND payment_id IS NOT NULL)),
    -- Released and cancelled tickets say when; a cancelled one its refund and fee, which make
    -- up its price.
    CHECK ((status IN ('released', 'cancelled')) = (ended_at IS NOT NULL)),
    CHECK ((status = 'cancelled') = (refund IS NOT NULL AND fee IS NOT NULL)),
    CHECK (status <> 'cancelled' OR refund + fee = price)
);
INSERT INTO tickets_v2 (id, user_id, showtime_id, seat_id, price, status, created_at, held_until,
                        paid_at, payment_id)
SELECT t.id, t.user_id, t.showtime_id, t.seat_id, t.price, t.status, t.created_at, t.held_until,
       t.paid_at, p.id
FROM tickets t LEFT JOIN payments p ON p.ticket_id = t.id;
DROP TABLE tickets;
ALTER TABLE tickets_v2 RENAME TO tickets;

-- The last line of defence against double booking: one held-or-paid ticket per seat, ever.
CREATE UNIQUE INDEX tickets_one_live_per_seat ON tickets (seat_id) WHERE status IN ('held', 'paid');
-- A user's tickets (the list, newest first).
CREATE INDEX tickets_by_user ON tickets (user_id, showtime_id);
-- A user's claims on a showtime (live holds and paid tickets: the per-user limit). Only rows
-- that may still claim a seat are in it, so counting them costs at most the limit: lapsed holds
-- are retired from it (status 'expired') before each count.
CREATE INDEX tickets_claims_by_user ON tickets (user_id, showtime_id) WHERE status IN ('held', 'paid');
CREATE INDEX tickets_holds_by_showtime ON tickets (showtime_id, held_until) WHERE status = 'held';
-- The paid (and cancelled) tickets of a showtime, and the tickets of a payment.
CREATE INDEX tickets_sold_by_showtime ON tickets (showtime_id) WHERE status IN ('paid', 'cancelled');
CREATE INDEX tickets_by_payment ON tickets (payment_id) WHERE payment_id IS NOT NULL;

-- When a showtime's sale opens (NULL: at once), and whether it was called off.
ALTER TABLE showtimes ADD COLUMN sale_opens_at INTEGER;
ALTER TABLE showtimes ADD COLUMN cancelled_at INTEGER;

-- A refund names the ticket it gives back; one refund per ticket, ever.
ALTER TABLE point_ledger ADD COLUMN ticket_id INTEGER REFERENCES tickets (id)
    CHECK ((kind = 'refund') = (ticket_id IS NOT NULL));
CREATE UNIQUE INDEX ledger_by_refunded_ticket ON point_ledger (ticket_id) WHERE ticket_id IS NOT NULL;
