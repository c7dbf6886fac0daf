//! Payments: one transaction spends the points, writes the ledger and payment rows, marks the
//! ticket paid and the seat sold, and ends the user's turn in the waiting room. All or nothing.

use crate::clock::from_millis;
use crate::config::Config;
use crate::db::sql::{params, Tx};
use crate::db::Now;
use crate::error::{Entity, Error, Result};
use crate::ids::{PaymentId, TicketId, UserId};
use crate::money::Points;
use crate::queue;
use crate::tickets::{self, TicketStatus};
use crate::wallet::{self, LedgerKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A payment (the contract's PaymentTransaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Its id.
    pub id: PaymentId,
    /// The payer.
    pub user_id: UserId,
    /// The ticket paid for.
    pub ticket_id: TicketId,
    /// Points spent.
    pub amount: Points,
    /// When.
    pub paid_at: DateTime<Utc>,
}

/// Pays for `ticket` with the user's points.
pub(crate) fn pay(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    user: UserId,
    ticket: TicketId,
) -> Result<Payment> {
    let t = tickets::claim_of(c, now, ticket)?
        .filter(|t| t.user_id == user)
        .ok_or(Error::NotFound(Entity::Ticket))?;
    match t.status {
        TicketStatus::Paid => return Err(Error::AlreadyPaid(ticket)),
        TicketStatus::Held => {}
        _ => return Err(Error::HoldExpired(ticket)),
    }
    // `wallet::apply` refuses a debit past the balance (insufficient_points); the payment row
    // written just before is then rolled back with everything else.
    let id = PaymentId::new(c.insert(
        "INSERT INTO payments (user_id, ticket_id, amount, paid_at) VALUES (?1, ?2, ?3, ?4)
         RETURNING id",
        params![user, ticket, t.price, now.ms],
    )?)?;
    let debit = t
        .price
        .checked_neg()
        .ok_or_else(|| Error::internal("price out of range"))?;
    wallet::apply(c, now, cfg, user, debit, LedgerKind::Payment, Some(id))?;
    c.execute(
        "UPDATE tickets SET status = 'paid', paid_at = ?2 WHERE id = ?1",
        params![ticket, now.ms],
    )?;
    let sold = c.execute(
        "UPDATE seats SET sold = 1, held_until = NULL WHERE id = ?1 AND ticket_id = ?2 AND sold = 0",
        params![t.seat_id, ticket],
    )?;
    if sold != 1 {
        return Err(Error::internal(format!(
            "seat {} does not carry ticket {}",
            t.seat_id, ticket
        )));
    }
    c.execute(
        "UPDATE showtimes SET sold_seats = sold_seats + 1 WHERE id = ?1",
        params![t.showtime_id],
    )?;
    queue::expire_user(c, user)?;
    Ok(Payment {
        id,
        user_id: user,
        ticket_id: ticket,
        amount: t.price,
        paid_at: from_millis(now.ms),
    })
}

/// A user's payments, newest first (found through the user's ledger rows).
pub(crate) fn history(c: &dyn Tx, user: UserId) -> Result<Vec<Payment>> {
    c.rows(
        "SELECT p.id, p.user_id, p.ticket_id, p.amount, p.paid_at
         FROM point_ledger l JOIN payments p ON p.id = l.payment_id
         WHERE l.user_id = ?1 AND l.kind = 'payment' ORDER BY p.id DESC",
        params![user],
        |r| {
            Ok(Payment {
                id: r.get(0)?,
                user_id: r.get(1)?,
                ticket_id: r.get(2)?,
                amount: r.get(3)?,
                paid_at: from_millis(r.get(4)?),
            })
        },
    )
}

/// Payments made (for metrics).
pub(crate) fn count(c: &dyn Tx) -> Result<i64> {
    c.value("SELECT COUNT(*) FROM payments", params![])
}
