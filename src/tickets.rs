//! Holds: a user's temporary claim on one seat, and the list of a user's tickets.
//!
//! A hold is live while `held_until` is after now. Exactly one live hold or sale per seat:
//! checked here first (for a clear error), enforced by the seat row's own claim and by the
//! partial unique index `tickets_one_live_per_seat` as the last line.

use crate::clock::from_millis;
use crate::config::Config;
use crate::db::sql::{params, stored_enum, Row, Tx};
use crate::db::Now;
use crate::error::{Entity, Error, Result};
use crate::ids::{ConcertId, SeatId, ShowtimeId, TicketId, UserId};
use crate::money::Points;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A ticket's status now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TicketStatus {
    /// Held until `held_until`.
    Held,
    /// Paid: the seat is the user's.
    Paid,
    /// The hold lapsed unpaid.
    Expired,
}

stored_enum!(TicketStatus, "ticket status", {
    TicketStatus::Held => "held",
    TicketStatus::Paid => "paid",
    TicketStatus::Expired => "expired",
});

/// A user's claim on one seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Its id.
    pub id: TicketId,
    /// Its holder.
    pub user_id: UserId,
    /// The concert.
    pub concert_id: ConcertId,
    /// The showtime.
    pub showtime_id: ShowtimeId,
    /// The seat.
    pub seat_id: SeatId,
    /// The seat's number.
    pub seat_number: i64,
    /// The price (fixed when held).
    pub price: Points,
    /// held, paid or expired (now).
    pub status: TicketStatus,
    /// When the hold ends (or ended).
    pub held_until: DateTime<Utc>,
}

fn ticket(now: Now) -> impl Fn(&dyn Row) -> Result<Ticket> {
    move |r| {
        let held_until: i64 = r.get(8)?;
        Ok(Ticket {
            id: r.get(0)?,
            user_id: r.get(1)?,
            concert_id: r.get(2)?,
            showtime_id: r.get(3)?,
            seat_id: r.get(4)?,
            seat_number: r.get(5)?,
            price: r.get(6)?,
            status: status_at(r.get(7)?, held_until, now),
            held_until: from_millis(held_until),
        })
    }
}

/// What paying for a ticket needs to know of it.
pub(crate) struct Claim {
    pub user_id: UserId,
    pub showtime_id: ShowtimeId,
    pub seat_id: SeatId,
    pub price: Points,
    /// Its status now.
    pub status: TicketStatus,
}

/// One ticket's claim by id, whoever holds it.
pub(crate) fn claim_of(c: &dyn Tx, now: Now, id: TicketId) -> Result<Option<Claim>> {
    c.row(
        "SELECT user_id, showtime_id, seat_id, price, status, held_until FROM tickets WHERE id = ?1",
        params![id],
        |r| {
            Ok(Claim {
                user_id: r.get(0)?,
                showtime_id: r.get(1)?,
                seat_id: r.get(2)?,
                price: r.get(3)?,
                status: status_at(r.get(4)?, r.get(5)?, now),
            })
        },
    )
}

/// A ticket's status at `now`: a hold whose `held_until` is not after now is expired.
fn status_at(stored: TicketStatus, held_until: i64, now: Now) -> TicketStatus {
    match stored {
        TicketStatus::Held if held_until <= now.ms => TicketStatus::Expired,
        other => other,
    }
}

/// A seat's claim as the seat row carries it.
struct SeatClaim {
    showtime: ShowtimeId,
    number: i64,
    price: Points,
    sold: bool,
    ticket: Option<i64>,
    held_until: Option<i64>,
}

/// Holds `seat` of `showtime` for `user` until now + hold TTL. The caller has checked (in this
/// same transaction) that the user may hold: see `queue::require_active`.
pub(crate) fn hold(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    user: UserId,
    showtime: ShowtimeId,
    seat: SeatId,
) -> Result<Ticket> {
    let (starts_at, concert_id): (i64, ConcertId) = c
        .row(
            "SELECT starts_at, concert_id FROM showtimes WHERE id = ?1",
            params![showtime],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .ok_or(Error::NotFound(Entity::Showtime))?;
    let s = c
        .row_locked(
            "SELECT showtime_id, number, price, sold, ticket_id, held_until FROM seats WHERE id = ?1",
            params![seat],
            |r| {
                Ok(SeatClaim {
                    showtime: r.get(0)?,
                    number: r.get(1)?,
                    price: r.get(2)?,
                    sold: r.get(3)?,
                    ticket: r.get(4)?,
                    held_until: r.get(5)?,
                })
            },
        )?
        .ok_or(Error::NotFound(Entity::Seat))?;
    if s.showtime != showtime {
        return Err(Error::NotFound(Entity::Seat));
    }
    if starts_at <= now.ms {
        return Err(Error::ShowtimeClosed(showtime));
    }
    if s.sold || s.held_until.is_some_and(|t| t > now.ms) {
        return Err(Error::SeatUnavailable(seat));
    }
    let holds: i64 = c.value(
        // Pinned: by the numbers alone the planner may prefer tickets_holds_by_showtime,
        // which holds every live hold of the showtime, not the user's few tickets.
        "SELECT COUNT(*) FROM tickets INDEXED BY tickets_by_user
         WHERE user_id = ?1 AND showtime_id = ?2 AND status = 'held' AND held_until > ?3",
        params![user, showtime, now.ms],
    )?;
    if holds >= i64::from(cfg.max_holds_per_user) {
        return Err(Error::HoldLimitReached(cfg.max_holds_per_user));
    }
    if let Some(lapsed) = s.ticket {
        // The previous hold lapsed: it becomes expired in the same transaction as the new hold.
        c.execute(
            "UPDATE tickets SET status = 'expired' WHERE id = ?1 AND status = 'held'",
            params![lapsed],
        )?;
    }
    let until = now.plus(cfg.hold_ttl);
    let id = TicketId::new(c.insert(
        "INSERT INTO tickets (user_id, showtime_id, seat_id, price, status, created_at, held_until)
         VALUES (?1, ?2, ?3, ?4, 'held', ?5, ?6) RETURNING id",
        params![user, showtime, seat, s.price, now.ms, until],
    )?)?;
    c.execute(
        "UPDATE seats SET ticket_id = ?2, held_until = ?3 WHERE id = ?1",
        params![seat, id, until],
    )?;
    Ok(Ticket {
        id,
        user_id: user,
        concert_id,
        showtime_id: showtime,
        seat_id: seat,
        seat_number: s.number,
        price: s.price,
        status: TicketStatus::Held,
        held_until: from_millis(until),
    })
}

/// A user's tickets, newest first.
pub(crate) fn of_user(c: &dyn Tx, now: Now, user: UserId) -> Result<Vec<Ticket>> {
    c.rows(
        "SELECT t.id, t.user_id, s.concert_id, t.showtime_id, t.seat_id,
                seat.number, t.price, t.status, t.held_until
         FROM tickets t
         JOIN showtimes s ON s.id = t.showtime_id
         JOIN seats seat ON seat.id = t.seat_id
         WHERE t.user_id = ?1 ORDER BY t.id DESC",
        params![user],
        ticket(now),
    )
}

/// Marks lapsed holds expired and frees their seats; returns how many.
pub(crate) fn sweep(c: &dyn Tx, now: Now) -> Result<usize> {
    let n = c.execute(
        "UPDATE tickets SET status = 'expired' WHERE status = 'held' AND held_until <= ?1",
        params![now.ms],
    )?;
    c.execute(
        "UPDATE seats SET ticket_id = NULL, held_until = NULL
         WHERE sold = 0 AND ticket_id IS NOT NULL AND held_until <= ?1",
        params![now.ms],
    )?;
    Ok(n)
}

/// Holds now, across all showtimes (for metrics).
pub(crate) fn live_holds(c: &dyn Tx, now: Now) -> Result<i64> {
    c.value(
        "SELECT COUNT(*) FROM tickets WHERE status = 'held' AND held_until > ?1",
        params![now.ms],
    )
}
