//! Payments: one transaction spends the points for one or several held tickets — one debit of
//! their sum, one ledger row, one payment row — marks every ticket paid and its seat sold, and
//! ends the user's turn in the waiting room. All or nothing.

use crate::clock::from_millis;
use crate::config::Config;
use crate::db::sql::{self, params, Tx};
use crate::db::Now;
use crate::error::{Error, Result};
use crate::ids::{PaymentId, SeatId, ShowtimeId, TicketId, UserId};
use crate::money::Points;
use crate::queue;
use crate::seatmap;
use crate::tickets::{self, TicketStatus};
use crate::wallet::{self, Reason};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A payment (the contract's PaymentTransaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Its id.
    pub id: PaymentId,
    /// The payer.
    pub user_id: UserId,
    /// The ticket paid for (of several, the lowest id).
    pub ticket_id: TicketId,
    /// Every ticket paid for, by id.
    #[serde(default)]
    pub ticket_ids: Vec<TicketId>,
    /// Points spent: the sum of the tickets' prices.
    pub amount: Points,
    /// Points refunded so far for its tickets (cancellations).
    #[serde(default)]
    pub refunded: Points,
    /// When.
    pub paid_at: DateTime<Utc>,
}

/// Pays for `ids` (held tickets of `user`) with the user's points, all or none.
pub(crate) fn pay(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    user: UserId,
    ids: &[TicketId],
) -> Result<Payment> {
    // The payer's wallet first, as every write of a user's money takes it (a keyed request has
    // taken it already), then the payer's entry (as a hold takes it), then the seats and the
    // tickets.
    wallet::lock(c, user)?;
    queue::lock_live_entry(c, user)?;
    let claims = tickets::own_claims(c, now, user, ids)?;
    for t in &claims {
        match t.status {
            TicketStatus::Held => {}
            TicketStatus::Paid => return Err(Error::AlreadyPaid(t.id)),
            TicketStatus::Expired => return Err(Error::HoldExpired(t.id)),
            _ => return Err(Error::TicketNotHeld(t.id)),
        }
    }
    let mut ids = ids.to_vec();
    ids.sort();
    let amount = Points::sum(claims.iter().map(|t| t.price))
        .ok_or_else(|| Error::InvalidAmount("the tickets' prices add up past any wallet".into()))?;
    // `wallet::apply` refuses a debit past the balance (insufficient_points); the payment row
    // written just before is then rolled back with everything else.
    let id = PaymentId::new(c.insert(
        "INSERT INTO payments (user_id, ticket_id, amount, paid_at) VALUES (?1, ?2, ?3, ?4)
         RETURNING id",
        params![user, ids[0], amount, now.ms],
    )?)?;
    let debit = amount
        .checked_neg()
        .ok_or_else(|| Error::internal("amount out of range"))?;
    wallet::apply(c, now, cfg, user, debit, Reason::Payment(id))?;
    let paid = c.execute(
        &format!(
            "UPDATE tickets SET status = 'paid', paid_at = ?1, payment_id = ?2 WHERE id IN ({})",
            sql::list(3, ids.len())
        ),
        &[params![now.ms, id], sql::to_params(&ids).as_slice()].concat(),
    )?;
    if paid != ids.len() {
        return Err(Error::internal("a paid ticket is gone"));
    }
    // Seats by showtime: one version, one update of the seats and one of the count each.
    let mut showtimes: Vec<ShowtimeId> = claims.iter().map(|t| t.showtime_id).collect();
    showtimes.sort();
    showtimes.dedup();
    for showtime in showtimes {
        let (seats, held): (Vec<SeatId>, Vec<TicketId>) = claims
            .iter()
            .filter(|t| t.showtime_id == showtime)
            .map(|t| (t.seat_id, t.id))
            .unzip();
        seatmap::bump_counting_sold(c, showtime, &seats, 1)?;
        let n = seats.len();
        // Each seat carries at most one ticket: n rows changed means every seat carried one of
        // these tickets.
        let sold = c.execute(
            &format!(
                "UPDATE seats SET sold = 1, held_until = NULL, version = {}
                 WHERE id IN ({}) AND ticket_id IN ({}) AND sold = 0",
                seatmap::stamp!(),
                sql::list(1, n),
                sql::list(1 + n, n)
            ),
            &[
                sql::to_params(&seats).as_slice(),
                sql::to_params(&held).as_slice(),
            ]
            .concat(),
        )?;
        if sold != n {
            return Err(Error::internal(format!(
                "the seats of showtime {showtime} do not carry the tickets paid for"
            )));
        }
    }
    queue::expire_user(c, user)?;
    Ok(Payment {
        id,
        user_id: user,
        ticket_id: ids[0],
        ticket_ids: ids,
        amount,
        refunded: Points::ZERO,
        paid_at: from_millis(now.ms),
    })
}

/// A user's payments, newest first (found through the user's ledger rows), each with its
/// tickets and what was refunded of them so far.
pub(crate) fn history(c: &dyn Tx, user: UserId) -> Result<Vec<Payment>> {
    let mut list = c.rows(
        "SELECT p.id, p.user_id, p.ticket_id, p.amount, p.paid_at
         FROM point_ledger l JOIN payments p ON p.id = l.payment_id
         WHERE l.user_id = ?1 AND l.kind = 'payment' ORDER BY p.id DESC",
        params![user],
        |r| {
            Ok(Payment {
                id: r.get(0)?,
                user_id: r.get(1)?,
                ticket_id: r.get(2)?,
                ticket_ids: Vec::new(),
                amount: r.get(3)?,
                refunded: Points::ZERO,
                paid_at: from_millis(r.get(4)?),
            })
        },
    )?;
    for p in &mut list {
        p.ticket_ids = c.rows(
            "SELECT id FROM tickets WHERE payment_id = ?1 ORDER BY id",
            params![p.id],
            |r| r.get(0),
        )?;
        p.refunded = c.value(
            "SELECT CAST(COALESCE(SUM(refund), 0) AS BIGINT) FROM tickets WHERE payment_id = ?1",
            params![p.id],
        )?;
    }
    Ok(list)
}

/// Payments made (for metrics).
pub(crate) fn count(c: &dyn Tx) -> Result<i64> {
    c.value("SELECT COUNT(*) FROM payments", params![])
}
