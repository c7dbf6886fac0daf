//! Cancellations: a paid ticket given back for a refund (by its user before the cutoff, or by
//! an operator until the show), and a whole showtime called off — every paid ticket refunded in
//! full and every hold released, in one transaction.
//!
//! A cancelled ticket keeps its payment; its refund (price − fee) is a ledger row of kind
//! `refund` naming the ticket (one per ticket: a unique index), and its seat is for sale again
//! at once.

use crate::clock::from_millis;
use crate::config::Config;
use crate::db::sql::{params, Tx};
use crate::db::Now;
use crate::error::{Entity, Error, Result};
use crate::ids::{ShowtimeId, TicketId, UserId};
use crate::money::Points;
use crate::tickets::{self, Claim, Ticket, TicketStatus};
use crate::wallet::{self, Reason};
use serde::{Deserialize, Serialize};

/// The answer to cancelling a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    /// The ticket, now `cancelled`.
    pub ticket: Ticket,
    /// Points given back: the price less the fee.
    pub refund: Points,
    /// Points kept.
    pub fee: Points,
    /// The holder's balance after the refund.
    pub balance: Points,
}

/// What calling a showtime off did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ShowtimeCancelled {
    /// Paid tickets cancelled (each refunded in full).
    pub cancelled: u64,
    /// Points refunded in all.
    pub refunded: Points,
    /// Live holds released.
    pub released: u64,
}

/// Who cancels, which decides the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum By {
    /// The ticket's holder: until `cancel_cutoff` before the show, the fee kept.
    User(UserId),
    /// An operator: until the show starts; the fee kept unless `no_fee`.
    Operator {
        /// Refund the whole price.
        no_fee: bool,
    },
}

/// Cancels a paid ticket with a refund.
pub(crate) fn cancel_ticket(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    id: TicketId,
    by: By,
) -> Result<Cancellation> {
    // The lock order: the holder's wallet (when the holder is the caller), the seat, the ticket.
    if let By::User(user) = by {
        wallet::lock(c, user)?;
    }
    tickets::lock_seats_of(c, &[id])?;
    let t = tickets::claim_of(c, now, id)?
        .filter(|t| match by {
            By::User(user) => t.user_id == user,
            By::Operator { .. } => true,
        })
        .ok_or(Error::NotFound(Entity::Ticket))?;
    if t.status != TicketStatus::Paid {
        return Err(Error::TicketNotPaid(id));
    }
    let starts_at: i64 = c.value(
        "SELECT starts_at FROM showtimes WHERE id = ?1",
        params![t.showtime_id],
    )?;
    let (closes_at, fee_percent) = match by {
        By::User(_) => (
            starts_at.saturating_sub(crate::clock::millis_of(cfg.cancel_cutoff)),
            cfg.cancel_fee_percent,
        ),
        By::Operator { no_fee } => (starts_at, if no_fee { 0 } else { cfg.cancel_fee_percent }),
    };
    let closed = match by {
        By::User(_) => now.ms > closes_at,
        By::Operator { .. } => now.ms >= closes_at,
    };
    if closed {
        return Err(Error::CancelClosed {
            ticket: id,
            closed_at: from_millis(closes_at),
        });
    }
    let fee = t
        .price
        .percent(fee_percent.min(100))
        .ok_or_else(|| Error::internal("fee out of range"))?;
    let refund = t
        .price
        .checked_sub(fee)
        .ok_or_else(|| Error::internal("refund out of range"))?;
    let balance = refund_one(c, now, cfg, &t, refund, fee)?;
    tickets::free_seat(c, t.showtime_id, t.seat_id, id, true)?;
    let ticket = tickets::own(c, now, t.user_id, id)?;
    Ok(Cancellation {
        ticket,
        refund,
        fee,
        balance,
    })
}

/// Marks one paid ticket cancelled with its refund and fee, and credits the refund (no ledger
/// row for a refund of nothing). Returns the holder's balance.
fn refund_one(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    t: &Claim,
    refund: Points,
    fee: Points,
) -> Result<Points> {
    c.execute(
        "UPDATE tickets SET status = 'cancelled', ended_at = ?2, refund = ?3, fee = ?4
         WHERE id = ?1 AND status = 'paid'",
        params![t.id, now.ms, refund, fee],
    )?;
    if refund > Points::ZERO {
        wallet::apply(c, now, cfg, t.user_id, refund, Reason::Refund(t.id))
    } else {
        wallet::balance_of(c, t.user_id)
    }
}

/// Calls a showtime off: no more holds (`showtime_closed`), every paid ticket cancelled with a
/// full refund, every live hold released, all in the caller's one transaction. Calling it off
/// again finds nothing more to do.
pub(crate) fn cancel_showtime(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    showtime: ShowtimeId,
) -> Result<ShowtimeCancelled> {
    // The lock order (wallets, seats, tickets): the wallets of everyone with a claim on it, by
    // user id — a payment under way holds its payer's wallet before its seat — then every seat
    // of it, by id. Holds and payments under way finish first; those that come later wait,
    // then see the showtime called off.
    // A seat carries the claim of its held or paid ticket.
    let claimants: Vec<UserId> = c.rows(
        "SELECT DISTINCT t.user_id FROM seats s JOIN tickets t ON t.id = s.ticket_id
         WHERE s.showtime_id = ?1 AND t.status IN ('held', 'paid')
         ORDER BY t.user_id",
        params![showtime],
        |r| r.get(0),
    )?;
    for user in claimants {
        wallet::lock(c, user)?;
    }
    c.query_locked(
        "SELECT id FROM seats WHERE showtime_id = ?1 ORDER BY id",
        params![showtime],
        &mut |_| Ok(()),
    )?;
    let found = c.execute(
        "UPDATE showtimes SET cancelled_at = COALESCE(cancelled_at, ?2) WHERE id = ?1",
        params![showtime, now.ms],
    )?;
    if found == 0 {
        return Err(Error::NotFound(Entity::Showtime));
    }
    // Holds (each its seat's claim): live ones released, lapsed ones expired.
    let released = c.execute(
        "UPDATE tickets SET status = 'released', ended_at = ?2
         WHERE status = 'held' AND held_until > ?2 AND id IN
             (SELECT ticket_id FROM seats WHERE showtime_id = ?1 AND held_until > ?2)",
        params![showtime, now.ms],
    )? as u64;
    let mut out = ShowtimeCancelled {
        released,
        ..ShowtimeCancelled::default()
    };
    c.execute(
        "UPDATE tickets SET status = 'expired' WHERE status = 'held' AND id IN
             (SELECT ticket_id FROM seats WHERE showtime_id = ?1 AND held_until IS NOT NULL)",
        params![showtime],
    )?;
    // Paid tickets, in id order (each user's ledger in the order the tickets were bought).
    // The `IN` term is the partial index's own (`tickets_sold_by_showtime`): SQLite uses a
    // partial index only for a query that has its condition, and without it scanned every
    // ticket of every showtime.
    let paid = c.rows(
        concat!(
            "SELECT ",
            tickets::claim_columns!(),
            " FROM tickets WHERE showtime_id = ?1 AND status IN ('paid', 'cancelled')",
            " AND status = 'paid' ORDER BY id"
        ),
        params![showtime],
        |r| Claim::read(r, now),
    )?;
    for t in &paid {
        refund_one(c, now, cfg, t, t.price, Points::ZERO)?;
        out.cancelled += 1;
        out.refunded = out
            .refunded
            .checked_add(t.price)
            .ok_or_else(|| Error::internal("refunds out of range"))?;
    }
    crate::seatmap::bump_all(c, showtime)?;
    c.execute(
        concat!(
            "UPDATE seats SET sold = 0, ticket_id = NULL, held_until = NULL, version = ",
            crate::seatmap::stamp!(),
            " WHERE showtime_id = ?1 AND ticket_id IS NOT NULL"
        ),
        params![showtime],
    )?;
    c.execute(
        "UPDATE seat_versions SET sold = 0 WHERE showtime_id = ?1",
        params![showtime],
    )?;
    Ok(out)
}
