-- Migration 2 on PostgreSQL: the order lifecycle (docs/API.md §6), as SQLite's
-- migrations/0002_order_lifecycle.sql. PostgreSQL changes the tickets table in place (SQLite
-- rebuilds it): two more statuses, the payment that paid a ticket, how often its hold was
-- extended, and a cancellation's refund and fee.

ALTER TABLE tickets DROP CONSTRAINT tickets_status, DROP CONSTRAINT tickets_paid;
ALTER TABLE tickets
    ADD COLUMN extensions BIGINT NOT NULL DEFAULT 0 CHECK (extensions >= 0),
    ADD COLUMN payment_id BIGINT REFERENCES payments (id),
    ADD COLUMN ended_at   BIGINT,
    ADD COLUMN refund     BIGINT CHECK (refund >= 0),
    ADD COLUMN fee        BIGINT CHECK (fee >= 0);
UPDATE tickets t SET payment_id = p.id FROM payments p WHERE p.ticket_id = t.id;
ALTER TABLE tickets
    ADD CONSTRAINT tickets_status
        CHECK (status IN ('held', 'paid', 'expired', 'released', 'cancelled')),
    -- A paid ticket, and a cancelled one (it was paid first), carry their payment.
    ADD CONSTRAINT tickets_paid
        CHECK ((status IN ('paid', 'cancelled')) = (paid_at IS NOT NULL AND payment_id IS NOT NULL)),
    -- Released and cancelled tickets say when; a cancelled one its refund and fee, which make
    -- up its price.
    ADD CONSTRAINT tickets_ended CHECK ((status IN ('released', 'cancelled')) = (ended_at IS NOT NULL)),
    ADD CONSTRAINT tickets_cancelled CHECK ((status = 'cancelled') = (refund IS NOT NULL AND fee IS NOT NULL)),
    ADD CONSTRAINT tickets_refund_and_fee CHECK (status <> 'cancelled' OR refund + fee = price);

-- A user's claims on a showtime (live holds and paid tickets: the per-user limit).
CREATE INDEX tickets_claims_by_user ON tickets (user_id, showtime_id) WHERE status IN ('held', 'paid');
-- The paid (and cancelled) tickets of a showtime, and the tickets of a payment.
CREATE INDEX tickets_sold_by_showtime ON tickets (showtime_id) WHERE status IN ('paid', 'cancelled');
CREATE INDEX tickets_by_payment ON tickets (payment_id) WHERE payment_id IS NOT NULL;

-- When a showtime's sale opens (NULL: at once), and whether it was called off.
ALTER TABLE showtimes ADD COLUMN sale_opens_at BIGINT, ADD COLUMN cancelled_at BIGINT;

-- A refund names the ticket it gives back; one refund per ticket, ever.
ALTER TABLE point_ledger ADD COLUMN ticket_id BIGINT REFERENCES tickets (id)
    CHECK ((kind = 'refund') = (ticket_id IS NOT NULL));
CREATE UNIQUE INDEX ledger_by_refunded_ticket ON point_ledger (ticket_id) WHERE ticket_id IS NOT NULL;
