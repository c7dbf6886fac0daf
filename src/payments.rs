//! Payments: one transaction spends the points, writes the ledger and payment rows, marks the
//! ticket paid and the seat sold, and ends the user's turn in the waiting room. All or nothing.

use crate::clock::from_millis;
use crate::config::Config;
use crate::db::Now;
use crate::error::{Error, Result};
use crate::ids::{PaymentId, TicketId, UserId};
use crate::tickets::{self, TicketStatus};
use crate::wallet::{self, LedgerKind};
use crate::{queue, Booking};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
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
    pub amount: i64,
    /// When.
    pub paid_at: DateTime<Utc>,
}

/// Pays for `ticket` with the user's points.
pub(crate) fn pay(
    c: &Connection,
    now: Now,
    cfg: &Config,
    user: UserId,
    ticket: TicketId,
) -> Result<Payment> {
    let t = tickets::claim_of(c, now, ticket)?
        .filter(|t| t.user_id == user)
        .ok_or(Error::NotFound("ticket"))?;
    match t.status {
        TicketStatus::Paid => return Err(Error::AlreadyPaid(ticket.0)),
        TicketStatus::Expired => return Err(Error::HoldExpired(ticket.0)),
        TicketStatus::Held => {}
    }
    // `wallet::apply` refuses a debit past the balance (insufficient_points); the payment row
    // written just before is then rolled back with everything else.
    c.prepare_cached(
        "INSERT INTO payments (user_id, ticket_id, amount, paid_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![user, ticket, t.price, now.ms])?;
    let id = PaymentId(c.last_insert_rowid());
    wallet::apply(c, now, cfg, user, -t.price, LedgerKind::Payment, Some(id))?;
    c.prepare_cached("UPDATE tickets SET status = 'paid', paid_at = ?2 WHERE id = ?1")?
        .execute(params![ticket, now.ms])?;
    let sold = c
        .prepare_cached("UPDATE seats SET sold = 1, held_until = NULL WHERE id = ?1 AND ticket_id = ?2 AND sold = 0")?
        .execute(params![t.seat_id, ticket])?;
    if sold != 1 {
        return Err(Error::internal(format!(
            "seat {} does not carry ticket {}",
            t.seat_id, ticket
        )));
    }
    c.prepare_cached("UPDATE showtimes SET sold_seats = sold_seats + 1 WHERE id = ?1")?
        .execute([t.showtime_id])?;
    queue::expire_user(c, user)?;
    Ok(Payment {
        id,
        user_id: user,
        ticket_id: ticket,
        amount: t.price,
        paid_at: from_millis(now.ms),
    })
}

pub(crate) fn history(c: &Connection, user: UserId) -> Result<Vec<Payment>> {
    let mut stmt = c.prepare_cached(
        "SELECT p.id, p.user_id, p.ticket_id, p.amount, p.paid_at
         FROM point_ledger l JOIN payments p ON p.id = l.payment_id
         WHERE l.user_id = ?1 AND l.kind = 'payment' ORDER BY p.id DESC",
    )?;
    let rows = stmt.query_map([user], |r| {
        Ok(Payment {
            id: r.get(0)?,
            user_id: r.get(1)?,
            ticket_id: r.get(2)?,
            amount: r.get(3)?,
            paid_at: from_millis(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Payments made (for metrics).
pub(crate) fn count(c: &Connection) -> Result<i64> {
    Ok(c.query_row("SELECT COUNT(*) FROM payments", [], |r| r.get(0))?)
}

impl Booking {
    /// Pays for a held ticket. With an idempotency key, a repeat of the same request replays the
    /// first answer and changes nothing.
    pub fn pay(&self, user: UserId, ticket: TicketId, key: Option<&str>) -> Result<Payment> {
        self.keyed_write(
            user,
            key,
            format!("pay ticket_id={ticket}"),
            move |c, now, cfg| pay(c, now, cfg, user, ticket),
        )
    }

    /// The user's payments, newest first.
    pub fn payment_history(&self, user: UserId) -> Result<Vec<Payment>> {
        self.db.read(|c, _| history(c, user))
    }
}
