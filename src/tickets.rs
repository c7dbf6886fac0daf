//! Holds: a user's temporary claim on one seat, and the list of a user's tickets.
//!
//! A hold is live while `held_until` is after now. Exactly one live hold or sale per seat:
//! checked here first (for a clear error), enforced by the seat row's own claim and by the
//! partial unique index `tickets_one_live_per_seat` as the last line.

use crate::clock::from_millis;
use crate::config::Config;
use crate::db::{ms, Now, OptionalRow};
use crate::error::{Error, Result};
use crate::ids::{ConcertId, SeatId, ShowtimeId, TicketId, UserId};
use crate::Booking;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

/// A ticket's status now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    /// Held until `held_until`.
    Held,
    /// Paid: the seat is the user's.
    Paid,
    /// The hold lapsed unpaid.
    Expired,
}

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
    pub price: i64,
    /// held, paid or expired (now).
    pub status: TicketStatus,
    /// When the hold ends (or ended).
    pub held_until: DateTime<Utc>,
}

const TICKET_SELECT: &str = "SELECT t.id, t.user_id, s.concert_id, t.showtime_id, t.seat_id,
        seat.number, t.price, t.status, t.held_until
    FROM tickets t
    JOIN showtimes s ON s.id = t.showtime_id
    JOIN seats seat ON seat.id = t.seat_id";

fn ticket_row(now: Now) -> impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Ticket> {
    move |r| {
        let held_until: i64 = r.get(8)?;
        let status = status_at(r.get_ref(7)?.as_str()?, held_until, now);
        Ok(Ticket {
            id: r.get(0)?,
            user_id: r.get(1)?,
            concert_id: r.get(2)?,
            showtime_id: r.get(3)?,
            seat_id: r.get(4)?,
            seat_number: r.get(5)?,
            price: r.get(6)?,
            status,
            held_until: from_millis(held_until),
        })
    }
}

/// What paying for a ticket needs to know of it.
pub(crate) struct Claim {
    pub user_id: UserId,
    pub showtime_id: ShowtimeId,
    pub seat_id: SeatId,
    pub price: i64,
    /// Its status now.
    pub status: TicketStatus,
}

/// One ticket's claim by id, whoever holds it.
pub(crate) fn claim_of(c: &Connection, now: Now, id: TicketId) -> Result<Option<Claim>> {
    c.prepare_cached(
        "SELECT user_id, showtime_id, seat_id, price, status, held_until FROM tickets WHERE id = ?1",
    )?
    .query_row([id], |r| {
        Ok(Claim {
            user_id: r.get(0)?,
            showtime_id: r.get(1)?,
            seat_id: r.get(2)?,
            price: r.get(3)?,
            status: status_at(r.get_ref(4)?.as_str()?, r.get(5)?, now),
        })
    })
    .optional_row()
}

/// A ticket's status at `now`: a hold whose `held_until` is not after now is expired.
fn status_at(stored: &str, held_until: i64, now: Now) -> TicketStatus {
    match stored {
        "paid" => TicketStatus::Paid,
        "held" if held_until > now.ms => TicketStatus::Held,
        _ => TicketStatus::Expired,
    }
}

/// Holds `seat` of `showtime` for `user` until now + hold TTL.
pub(crate) fn hold(
    c: &Connection,
    now: Now,
    cfg: &Config,
    user: UserId,
    showtime: ShowtimeId,
    seat: SeatId,
) -> Result<Ticket> {
    let (starts_at, concert_id): (i64, ConcertId) = c
        .prepare_cached("SELECT starts_at, concert_id FROM showtimes WHERE id = ?1")?
        .query_row([showtime], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional_row()?
        .ok_or(Error::NotFound("showtime"))?;
    let (seat_showtime, number, price, sold, claim, held_until): SeatClaim = c
        .prepare_cached(
            "SELECT showtime_id, number, price, sold, ticket_id, held_until FROM seats WHERE id = ?1",
        )?
        .query_row([seat], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .optional_row()?
        .ok_or(Error::NotFound("seat"))?;
    if seat_showtime != showtime.0 {
        return Err(Error::NotFound("seat"));
    }
    if starts_at <= now.ms {
        return Err(Error::ShowtimeClosed(showtime.0));
    }
    if sold || held_until.is_some_and(|t| t > now.ms) {
        return Err(Error::SeatUnavailable(seat.0));
    }
    let holds: i64 = c
        .prepare_cached(
            // Pinned: by the numbers alone the planner may prefer tickets_holds_by_showtime,
            // which holds every live hold of the showtime, not the user's few tickets.
            "SELECT COUNT(*) FROM tickets INDEXED BY tickets_by_user
             WHERE user_id = ?1 AND showtime_id = ?2 AND status = 'held' AND held_until > ?3",
        )?
        .query_row(params![user, showtime, now.ms], |r| r.get(0))?;
    if holds >= i64::from(cfg.max_holds_per_user) {
        return Err(Error::HoldLimitReached(cfg.max_holds_per_user));
    }
    if let Some(lapsed) = claim {
        // The previous hold lapsed: it becomes expired in the same transaction as the new hold.
        c.prepare_cached(
            "UPDATE tickets SET status = 'expired' WHERE id = ?1 AND status = 'held'",
        )?
        .execute([lapsed])?;
    }
    let until = now.ms + ms(cfg.hold_ttl);
    c.prepare_cached(
        "INSERT INTO tickets (user_id, showtime_id, seat_id, price, status, created_at, held_until)
         VALUES (?1, ?2, ?3, ?4, 'held', ?5, ?6)",
    )?
    .execute(params![user, showtime, seat, price, now.ms, until])?;
    let id = c.last_insert_rowid();
    c.prepare_cached("UPDATE seats SET ticket_id = ?2, held_until = ?3 WHERE id = ?1")?
        .execute(params![seat, id, until])?;
    Ok(Ticket {
        id: TicketId(id),
        user_id: user,
        concert_id,
        showtime_id: showtime,
        seat_id: seat,
        seat_number: number,
        price,
        status: TicketStatus::Held,
        held_until: from_millis(until),
    })
}

/// A seat's showtime, number, price, sold flag, claiming ticket and hold end.
type SeatClaim = (i64, i64, i64, bool, Option<i64>, Option<i64>);

/// A user's tickets, newest first.
pub(crate) fn of_user(c: &Connection, now: Now, user: UserId) -> Result<Vec<Ticket>> {
    let mut stmt = c.prepare_cached(&format!(
        "{TICKET_SELECT} WHERE t.user_id = ?1 ORDER BY t.id DESC"
    ))?;
    let rows = stmt.query_map([user], ticket_row(now))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Marks lapsed holds expired and frees their seats; returns how many.
pub(crate) fn sweep(c: &Connection, now: Now) -> Result<usize> {
    let n = c.execute(
        "UPDATE tickets SET status = 'expired' WHERE status = 'held' AND held_until <= ?1",
        [now.ms],
    )?;
    c.execute(
        "UPDATE seats SET ticket_id = NULL, held_until = NULL
         WHERE sold = 0 AND ticket_id IS NOT NULL AND held_until <= ?1",
        [now.ms],
    )?;
    Ok(n)
}

/// Holds now, across all showtimes (for metrics).
pub(crate) fn live_holds(c: &Connection, now: Now) -> Result<i64> {
    Ok(
        c.prepare_cached("SELECT COUNT(*) FROM tickets WHERE status = 'held' AND held_until > ?1")?
            .query_row([now.ms], |r| r.get(0))?,
    )
}

impl Booking {
    /// Holds a seat for `user` for the hold TTL.
    pub fn hold(&self, user: UserId, showtime: ShowtimeId, seat: SeatId) -> Result<Ticket> {
        let cfg = self.cfg.clone();
        self.db
            .write_op(move |c, now| hold(c, now, &cfg, user, showtime, seat))
    }

    /// The user's tickets, newest first, with their status now.
    pub fn tickets(&self, user: UserId) -> Result<Vec<Ticket>> {
        self.db.read(|c, now| of_user(c, now, user))
    }
}
