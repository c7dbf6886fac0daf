//! Housekeeping and self-checks: `sweep` tidies rows whose time has passed (nothing depends on
//! it having run), `verify` checks every invariant of the contract, and `stats` feeds metrics.

use crate::config::Config;
use crate::db::sql::{params, ToParam, Tx};
use crate::db::Now;
use crate::error::Result;
use crate::{idempotency, payments, queue, tickets};
use serde::Serialize;

/// What a sweep tidied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Lapsed holds marked expired (their seats freed).
    pub expired_holds: u64,
    /// Lapsed queue entries marked expired.
    pub expired_entries: u64,
    /// Idempotency keys past retention removed.
    pub removed_idempotency_keys: u64,
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which invariant (a stable snake_case name).
    pub invariant: &'static str,
    /// What exactly is wrong, naming the seat, wallet, ticket or payment.
    pub detail: String,
}

/// The result of [`crate::Operator::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// True when no invariant is broken.
    pub ok: bool,
    /// Every violation found.
    pub violations: Vec<Violation>,
}

/// Live figures for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Places in line behind the admission frontier (an upper bound of the waiting entries,
    /// as positions are; kept, never counted).
    pub waiting: i64,
    /// Active sessions (kept; a lapsed one counts until it is retired at the next queue call).
    pub active: i64,
    /// Prequeue entries not placed in line yet.
    pub prequeue: i64,
    /// Users ever admitted.
    pub admitted_total: i64,
    /// Whether admission is paused.
    pub paused: bool,
    /// Holds live now.
    pub live_holds: i64,
    /// Payments ever made.
    pub payments: i64,
}

pub(crate) fn sweep(c: &dyn Tx, now: Now, cfg: &Config) -> Result<SweepReport> {
    let holds = tickets::sweep(c, now)?;
    let entries = queue::sweep(c, now, cfg)?;
    let keys = idempotency::sweep(c, now.minus(cfg.idempotency_retention))?;
    Ok(SweepReport {
        expired_holds: holds as u64,
        expired_entries: entries as u64,
        removed_idempotency_keys: keys as u64,
    })
}

/// What a check's query binds as `?1`.
#[derive(Clone, Copy)]
enum Binds {
    Nothing,
    Now,
    MaxBalance,
}

/// Each invariant as a query returning (detail) rows, one per violation. Written in the SQL
/// every engine of `db` accepts.
const CHECKS: &[(&str, Binds, &str)] = &[
    (
        "one_live_ticket_per_seat",
        Binds::Now,
        "SELECT 'seat ' || seat_id || ' has ' || COUNT(*) || ' live tickets' FROM tickets
         WHERE status = 'paid' OR (status = 'held' AND held_until > ?1)
         GROUP BY seat_id HAVING COUNT(*) > 1",
    ),
    (
        // A seat is sold exactly when one paid (not cancelled) ticket claims it.
        "sold_seat_has_one_paid_ticket_and_payment",
        Binds::Nothing,
        "SELECT 'seat ' || s.id || ' is sold with ' || COALESCE(paid.n, 0) || ' paid tickets'
         FROM seats s
         LEFT JOIN (SELECT seat_id, COUNT(*) AS n FROM tickets WHERE status = 'paid' GROUP BY seat_id) paid
           ON paid.seat_id = s.id
         WHERE s.sold = 1 AND COALESCE(paid.n, 0) <> 1",
    ),
    (
        "paid_ticket_has_sold_seat",
        Binds::Nothing,
        "SELECT 'ticket ' || t.id || ' is paid but seat ' || t.seat_id || ' is not sold to it'
         FROM tickets t JOIN seats s ON s.id = t.seat_id
         WHERE t.status = 'paid' AND (s.sold = 0 OR s.ticket_id IS DISTINCT FROM t.id)",
    ),
    (
        "paid_ticket_has_payment",
        Binds::Nothing,
        "SELECT 'ticket ' || t.id || ' is ' || t.status || ' but has no payment'
         FROM tickets t LEFT JOIN payments p ON p.id = t.payment_id
         WHERE t.status IN ('paid', 'cancelled') AND p.id IS NULL",
    ),
    (
        "live_hold_is_the_seats_claim",
        Binds::Now,
        "SELECT 'ticket ' || t.id || ' holds seat ' || t.seat_id || ' but the seat does not carry it'
         FROM tickets t JOIN seats s ON s.id = t.seat_id
         WHERE t.status = 'held' AND t.held_until > ?1
           AND (s.ticket_id IS DISTINCT FROM t.id OR s.held_until IS DISTINCT FROM t.held_until)",
    ),
    (
        // A lapsed hold not yet swept is still its seat's claim: the seats name every held
        // ticket (sweeps and a showtime's cancellation find them through the seats).
        "held_ticket_is_its_seats_claim",
        Binds::Now,
        "SELECT 'ticket ' || t.id || ' is held but seat ' || t.seat_id || ' does not carry it'
         FROM tickets t JOIN seats s ON s.id = t.seat_id
         WHERE t.status = 'held' AND t.held_until <= ?1 AND s.ticket_id IS DISTINCT FROM t.id",
    ),
    (
        // No released, lapsed or cancelled ticket claims a seat.
        "ended_ticket_claims_no_seat",
        Binds::Now,
        "SELECT 'seat ' || s.id || ' is claimed by ' || t.status || ' ticket ' || t.id
         FROM seats s JOIN tickets t ON t.id = s.ticket_id
         WHERE (t.status IN ('released', 'cancelled', 'expired')
                OR (t.status = 'held' AND t.held_until <= ?1))
           AND (s.sold = 1 OR s.held_until > ?1)",
    ),
    (
        "wallet_equals_ledger",
        Binds::Nothing,
        "SELECT 'wallet ' || w.user_id || ' balance ' || w.balance || ' but ledger sums to '
                || CAST(COALESCE(l.total, 0) AS BIGINT)
         FROM wallets w LEFT JOIN (SELECT user_id, SUM(amount) AS total FROM point_ledger GROUP BY user_id) l
           ON l.user_id = w.user_id
         WHERE w.balance <> COALESCE(l.total, 0)",
    ),
    (
        "ledger_has_wallet",
        Binds::Nothing,
        "SELECT 'ledger rows of ' || user_id || ' have no wallet' FROM point_ledger
         WHERE user_id NOT IN (SELECT user_id FROM wallets) GROUP BY user_id",
    ),
    (
        "balance_within_limits",
        Binds::MaxBalance,
        "SELECT 'wallet ' || user_id || ' balance ' || balance || ' is outside 0..'
                || CAST(?1 AS BIGINT)
         FROM wallets WHERE balance < 0 OR balance > ?1",
    ),
    (
        // A payment's amount is the sum of its tickets' prices; they are the payer's, paid or
        // cancelled since, and the payment names the lowest of them.
        "payment_matches_ticket",
        Binds::Nothing,
        "SELECT 'payment ' || p.id || ' of ' || p.amount || ' for ticket ' || p.ticket_id
                || ' does not match its tickets (' || COALESCE(t.n, 0) || ' tickets, '
                || CAST(COALESCE(t.total, 0) AS BIGINT) || ' points)'
         FROM payments p
         LEFT JOIN (SELECT payment_id, COUNT(*) AS n, SUM(price) AS total, MIN(id) AS first,
                           SUM(CASE WHEN status IN ('paid', 'cancelled') THEN 0 ELSE 1 END) AS bad
                    FROM tickets WHERE payment_id IS NOT NULL GROUP BY payment_id) t
           ON t.payment_id = p.id
         WHERE t.n IS NULL OR p.amount <> t.total OR t.bad > 0 OR p.ticket_id <> t.first
            OR EXISTS (SELECT 1 FROM tickets x WHERE x.payment_id = p.id AND x.user_id <> p.user_id)",
    ),
    (
        "payment_has_ledger_row",
        Binds::Nothing,
        "SELECT 'payment ' || p.id || ' has no matching ledger row'
         FROM payments p LEFT JOIN point_ledger l ON l.payment_id = p.id
         WHERE l.id IS NULL OR l.amount <> -p.amount OR l.user_id <> p.user_id",
    ),
    (
        // Every cancelled ticket has one refund row of its refund (none for a refund of 0).
        "cancelled_ticket_is_refunded",
        Binds::Nothing,
        "SELECT 'ticket ' || t.id || ' was cancelled with a refund of ' || t.refund || ' but '
                || COUNT(l.id) || ' refund rows of ' || CAST(COALESCE(SUM(l.amount), 0) AS BIGINT)
         FROM tickets t LEFT JOIN point_ledger l ON l.ticket_id = t.id AND l.kind = 'refund'
         WHERE t.status = 'cancelled'
         GROUP BY t.id, t.refund
         HAVING COUNT(l.id) <> (CASE WHEN t.refund > 0 THEN 1 ELSE 0 END)
             OR COALESCE(SUM(l.amount), 0) <> t.refund",
    ),
    (
        "refund_is_of_a_cancelled_ticket",
        Binds::Nothing,
        "SELECT 'refund row ' || l.id || ' of ' || l.amount || ' names ticket ' || l.ticket_id
                || ' (' || COALESCE(t.status, 'missing') || ')'
         FROM point_ledger l LEFT JOIN tickets t ON t.id = l.ticket_id
         WHERE l.kind = 'refund'
           AND (t.id IS NULL OR t.status <> 'cancelled' OR t.user_id <> l.user_id)",
    ),
    (
        "showtime_sold_count",
        Binds::Nothing,
        // Per slot of the showtime's counts (src/seatmap.rs): its sold seats of that slot.
        concat!(
            "SELECT 'showtime ' || v.showtime_id || ' counts ' || v.sold || ' sold seats in slot '
                    || v.slot || ' but has ' || COALESCE(n.sold, 0)
             FROM seat_versions v
             LEFT JOIN (SELECT showtime_id, id % ",
            crate::seatmap::slots!(),
            " AS slot, COUNT(*) AS sold FROM seats WHERE sold = 1 GROUP BY showtime_id, id % ",
            crate::seatmap::slots!(),
            ") n ON n.showtime_id = v.showtime_id AND n.slot = v.slot
             WHERE v.sold <> COALESCE(n.sold, 0)"
        ),
    ),
    (
        "seat_stamped_within_its_showtime_version",
        Binds::Nothing,
        concat!(
            "SELECT 'seat ' || seat.id || ' is stamped with version ' || seat.version
                    || ' but its slot of showtime ' || seat.showtime_id || ' is at '
                    || COALESCE(v.counter, -1)
             FROM seats seat LEFT JOIN seat_versions v
               ON v.showtime_id = seat.showtime_id AND v.slot = seat.id % ",
            crate::seatmap::slots!(),
            " WHERE v.counter IS NULL OR seat.version > v.counter"
        ),
    ),
    (
        "showtime_has_its_version_slots",
        Binds::Nothing,
        concat!(
            "SELECT 'showtime ' || s.id || ' has ' || COUNT(v.slot) || ' seat version slots'
             FROM showtimes s LEFT JOIN seat_versions v ON v.showtime_id = s.id
             GROUP BY s.id HAVING COUNT(v.slot) <> ",
            crate::seatmap::slots!()
        ),
    ),
    (
        "called_off_showtime_has_no_claims",
        Binds::Now,
        "SELECT 'showtime ' || s.id || ' was called off but seat ' || seat.id || ' is '
                || CASE WHEN seat.sold = 1 THEN 'sold' ELSE 'held' END
         FROM showtimes s JOIN seats seat ON seat.showtime_id = s.id
         WHERE s.cancelled_at IS NOT NULL AND (seat.sold = 1 OR seat.held_until > ?1)",
    ),
];

/// Checks every invariant of the contract; one [`Violation`] per broken one found. (The
/// engine's own integrity checks are added by the caller.)
pub(crate) fn verify(c: &dyn Tx, now: Now, cfg: &Config) -> Result<Vec<Violation>> {
    let mut violations = Vec::new();
    for (invariant, binds, sql) in CHECKS {
        let params: &[&dyn ToParam] = match binds {
            Binds::Nothing => params![],
            Binds::Now => params![now.ms],
            Binds::MaxBalance => params![cfg.max_balance],
        };
        violations.extend(
            c.rows(sql, params, |r| r.get::<String>(0))?
                .into_iter()
                .map(|detail| Violation { invariant, detail }),
        );
    }
    for (invariant, sql) in queue::CHECKS {
        violations.extend(
            c.rows(sql, params![], |r| r.get::<String>(0))?
                .into_iter()
                .map(|detail| Violation { invariant, detail }),
        );
    }
    Ok(violations)
}

/// Live figures for metrics.
/// Live figures for metrics: the queue's kept counts (O(1), however large the sale), live holds
/// and payments.
pub(crate) fn stats(c: &dyn Tx, now: Now, cfg: &Config) -> Result<Stats> {
    let q = queue::settings(c, cfg)?;
    let (in_line, active) = queue::kept_counts(c)?;
    Ok(Stats {
        waiting: in_line,
        active,
        prequeue: q.prequeue,
        admitted_total: q.admitted_total,
        paused: q.paused,
        live_holds: tickets::live_holds(c, now)?,
        payments: payments::count(c)?,
    })
}
