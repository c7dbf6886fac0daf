//! Holds and tickets: a user's claims on seats, from hold to release, lapse or payment.
//!
//! A hold is live while `held_until` is after now. Exactly one live hold or sale per seat:
//! checked here first (for a clear error), enforced by the seat row's own claim and by the
//! partial unique index `tickets_one_live_per_seat` as the last line. Several seats of one hold
//! are checked and written in ascending seat-id order, all or none.
//!
//! **Lock order** (for engines with row locks; SQLite's one writer needs none): a write that
//! changes a ticket locks its seat first, then the ticket — seats in ascending id order, then
//! tickets in ascending id order. A seat never changes its ticket behind a lock on that ticket,
//! so holds, payments, releases, extensions and cancellations of the same seats queue instead
//! of deadlocking. A write that changes a seat's status then bumps its showtime's seat version
//! (locking the showtime row, [`crate::seatmap::bump`]) only once its seats are locked.

use crate::clock::from_millis;
use crate::config::Config;
use crate::db::sql::{self, params, stored_enum, Row, Tx};
use crate::db::Now;
use crate::error::{Closed, Entity, Error, Result};
use crate::ids::{ConcertId, SeatId, ShowtimeId, TicketId, UserId};
use crate::money::Points;
use crate::seatmap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

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
    /// Its holder gave the hold back before it lapsed.
    Released,
    /// It was paid, then cancelled with a refund.
    Cancelled,
}

stored_enum!(TicketStatus, "ticket status", {
    TicketStatus::Held => "held",
    TicketStatus::Paid => "paid",
    TicketStatus::Expired => "expired",
    TicketStatus::Released => "released",
    TicketStatus::Cancelled => "cancelled",
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

/// The columns of [`ticket`], for `FROM tickets t JOIN showtimes s … JOIN seats seat …`.
const TICKET_FROM: &str = "SELECT t.id, t.user_id, s.concert_id, t.showtime_id, t.seat_id,
        seat.number, t.price, t.status, t.held_until
    FROM tickets t
    JOIN showtimes s ON s.id = t.showtime_id
    JOIN seats seat ON seat.id = t.seat_id";

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

/// One ticket of `user` (`not_found` if it does not exist or is someone else's), as it is now.
pub(crate) fn own(c: &dyn Tx, now: Now, user: UserId, id: TicketId) -> Result<Ticket> {
    c.row(
        &format!("{TICKET_FROM} WHERE t.id = ?1"),
        params![id],
        ticket(now),
    )?
    .filter(|t| t.user_id == user)
    .ok_or(Error::NotFound(Entity::Ticket))
}

/// What paying for (or cancelling) a ticket needs to know of it, read with its row locked.
pub(crate) struct Claim {
    pub id: TicketId,
    pub user_id: UserId,
    pub showtime_id: ShowtimeId,
    pub seat_id: SeatId,
    pub price: Points,
    /// Its status now.
    pub status: TicketStatus,
}

/// The columns [`Claim::read`] reads, in its order (a macro, so queries can `concat!` it).
macro_rules! claim_columns {
    () => {
        "id, user_id, showtime_id, seat_id, price, status, held_until"
    };
}
pub(crate) use claim_columns;

impl Claim {
    /// A claim from a row of `claim_columns!()`, its status as of `now`.
    pub(crate) fn read(r: &dyn Row, now: Now) -> Result<Claim> {
        Ok(Claim {
            id: r.get(0)?,
            user_id: r.get(1)?,
            showtime_id: r.get(2)?,
            seat_id: r.get(3)?,
            price: r.get(4)?,
            status: status_at(r.get(5)?, r.get(6)?, now),
        })
    }
}

/// One ticket's claim by id, whoever holds it; its row stays locked until the transaction ends.
pub(crate) fn claim_of(c: &dyn Tx, now: Now, id: TicketId) -> Result<Option<Claim>> {
    c.row_locked(
        concat!("SELECT ", claim_columns!(), " FROM tickets WHERE id = ?1"),
        params![id],
        |r| Claim::read(r, now),
    )
}

/// The claims of `user` on `ids` (each must be theirs: else `not_found`), locked in ascending id
/// order after their seats; `ids` must be non-empty and distinct (`invalid_request`). Returned
/// in `ids`' order. Three statements however many tickets.
pub(crate) fn own_claims(
    c: &dyn Tx,
    now: Now,
    user: UserId,
    ids: &[TicketId],
) -> Result<Vec<Claim>> {
    distinct("ticket_ids", ids)?;
    lock_seats_of(c, ids)?;
    let mut claims = Vec::with_capacity(ids.len());
    c.query_locked(
        &format!(
            concat!(
                "SELECT ",
                claim_columns!(),
                " FROM tickets WHERE id IN ({}) ORDER BY id"
            ),
            sql::list(1, ids.len())
        ),
        &sql::to_params(ids),
        &mut |r| {
            claims.push(Claim::read(r, now)?);
            Ok(())
        },
    )?;
    if claims.len() != ids.len() || claims.iter().any(|t| t.user_id != user) {
        return Err(Error::NotFound(Entity::Ticket));
    }
    claims.sort_by_key(|t| ids.iter().position(|id| *id == t.id));
    Ok(claims)
}

/// Locks the seats `tickets` are for, in ascending seat-id order (a ticket's seat never
/// changes, so it can be read before the lock): the first step of every write that changes a
/// ticket. Two statements however many tickets.
pub(crate) fn lock_seats_of(c: &dyn Tx, tickets: &[TicketId]) -> Result<()> {
    let list = sql::list(1, tickets.len());
    let seats: Vec<i64> = c.rows(
        &format!("SELECT seat_id FROM tickets WHERE id IN ({list})"),
        &sql::to_params(tickets),
        |r| r.get(0),
    )?;
    if seats.is_empty() {
        return Ok(());
    }
    c.query_locked(
        &format!(
            "SELECT id FROM seats WHERE id IN ({}) ORDER BY id",
            sql::list(1, seats.len())
        ),
        &sql::to_params(&seats),
        &mut |_| Ok(()),
    )
}

/// One ticket of `user` as [`own`] reads it, inside a write that changes it: its seat and then
/// the ticket locked first (see the module's lock order).
fn own_locked(c: &dyn Tx, now: Now, user: UserId, id: TicketId) -> Result<Ticket> {
    lock_seats_of(c, &[id])?;
    claim_of(c, now, id)?;
    own(c, now, user, id)
}

/// A request's list of ids: at least one, none twice.
pub(crate) fn distinct<T: Copy + Eq + std::hash::Hash + std::fmt::Display>(
    what: &str,
    ids: &[T],
) -> Result<()> {
    if ids.is_empty() {
        return Err(Error::InvalidRequest(format!("{what} must not be empty")));
    }
    let mut seen = HashSet::with_capacity(ids.len());
    if let Some(twice) = ids.iter().find(|id| !seen.insert(**id)) {
        return Err(Error::InvalidRequest(format!("{what} lists {twice} twice")));
    }
    Ok(())
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
    id: SeatId,
    showtime: ShowtimeId,
    number: i64,
    price: Points,
    sold: bool,
    ticket: Option<i64>,
    held_until: Option<i64>,
}

impl SeatClaim {
    fn free(&self, now: Now) -> bool {
        !self.sold && self.held_until.is_none_or(|t| t <= now.ms)
    }
}

/// A showtime as a hold needs it, with the user's claims on it.
struct ShowtimeRow {
    concert: ConcertId,
    starts_at: i64,
    sale_opens_at: Option<i64>,
    cancelled: bool,
    /// The user's live holds and paid tickets of it.
    claims: i64,
    /// Whether a hold of the user's on it has lapsed but is still marked held.
    lapsed: bool,
}

/// The showtime and `user`'s claims on it, in one read (one round trip on a server engine): the
/// claims are two seeks of `tickets_by_user` (held and paid entries: its key ends with the
/// status), however long the user's history.
fn showtime_row(c: &dyn Tx, now: Now, user: UserId, showtime: ShowtimeId) -> Result<ShowtimeRow> {
    c.row(
        "SELECT concert_id, starts_at, sale_opens_at, cancelled_at IS NOT NULL,
                (SELECT COUNT(*) FROM tickets WHERE user_id = ?2 AND showtime_id = ?1
                   AND status IN ('held', 'paid') AND (status = 'paid' OR held_until > ?3)),
                (SELECT COUNT(*) FROM tickets WHERE user_id = ?2 AND showtime_id = ?1
                   AND status = 'held' AND held_until <= ?3)
         FROM showtimes WHERE id = ?1",
        params![showtime, user, now.ms],
        |r| {
            Ok(ShowtimeRow {
                concert: r.get(0)?,
                starts_at: r.get(1)?,
                sale_opens_at: r.get(2)?,
                cancelled: r.get(3)?,
                claims: r.get(4)?,
                lapsed: r.get::<i64>(5)? > 0,
            })
        },
    )?
    .ok_or(Error::NotFound(Entity::Showtime))
}

/// Holds `seats` of `showtime` for `user` until now + hold TTL: every one of them, or (on any
/// error) none. The caller has checked, in this same transaction, that the user may hold (see
/// `queue::require_active`). Tickets come back in the order of `seats`.
pub(crate) fn hold(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    user: UserId,
    showtime: ShowtimeId,
    seats: &[SeatId],
) -> Result<Vec<Ticket>> {
    distinct("seat_ids", seats)?;
    let limit = cfg.max_tickets_per_user;
    if seats.len() > limit as usize {
        showtime_row(c, now, user, showtime)?; // not_found before anything else
        return Err(Error::HoldLimitReached(limit));
    }
    // Seats in ascending id order: the one order every writer locks them in.
    let mut claims = Vec::with_capacity(seats.len());
    c.query_locked(
        &format!(
            "SELECT id, showtime_id, number, price, sold, ticket_id, held_until FROM seats
             WHERE id IN ({}) ORDER BY id",
            sql::list(1, seats.len())
        ),
        &sql::to_params(seats),
        &mut |r| {
            claims.push(SeatClaim {
                id: r.get(0)?,
                showtime: r.get(1)?,
                number: r.get(2)?,
                price: r.get(3)?,
                sold: r.get(4)?,
                ticket: r.get(5)?,
                held_until: r.get(6)?,
            });
            Ok(())
        },
    )?;
    if claims.len() != seats.len() || claims.iter().any(|s| s.showtime != showtime) {
        showtime_row(c, now, user, showtime)?; // a showtime that does not exist is named first
        return Err(Error::NotFound(Entity::Seat));
    }
    // Read once the seats are locked (the seats found are of it, so it exists): a showtime
    // called off meanwhile (which locks every seat of it first) is seen.
    let show = showtime_row(c, now, user, showtime)?;
    if show.cancelled {
        return Err(Error::ShowtimeClosed(showtime, Closed::CalledOff));
    }
    if show.starts_at <= now.ms {
        return Err(Error::ShowtimeClosed(showtime, Closed::Started));
    }
    if let Some(opens) = show.sale_opens_at.filter(|t| *t > now.ms) {
        return Err(Error::SaleNotOpen {
            showtime,
            opens_at: from_millis(opens),
        });
    }
    if let Some(taken) = seats
        .iter()
        .find(|id| claims.iter().any(|s| s.id == **id && !s.free(now)))
    {
        return Err(Error::SeatUnavailable(*taken));
    }
    if show.lapsed {
        retire_lapsed(c, now, user, showtime)?;
    }
    if show.claims + seats.len() as i64 > i64::from(limit) {
        return Err(Error::HoldLimitReached(limit));
    }
    let until = now.plus(cfg.hold_ttl);
    let stamps = seatmap::bump(c, showtime, seats)?;
    let mut out = Vec::with_capacity(claims.len());
    for s in &claims {
        if let Some(lapsed) = s.ticket {
            // The seat's previous hold lapsed: it ends in the same transaction as the new one.
            c.execute(
                "UPDATE tickets SET status = 'expired' WHERE id = ?1 AND status = 'held'",
                params![lapsed],
            )?;
        }
        let id = TicketId::new(c.insert(
            "INSERT INTO tickets (user_id, showtime_id, seat_id, price, status, created_at, held_until)
             VALUES (?1, ?2, ?3, ?4, 'held', ?5, ?6) RETURNING id",
            params![user, showtime, s.id, s.price, now.ms, until],
        )?)?;
        c.execute(
            "UPDATE seats SET ticket_id = ?2, held_until = ?3, version = ?4 WHERE id = ?1",
            params![s.id, id, until, stamps.of(s.id)?],
        )?;
        out.push(Ticket {
            id,
            user_id: user,
            concert_id: show.concert,
            showtime_id: showtime,
            seat_id: s.id,
            seat_number: s.number,
            price: s.price,
            status: TicketStatus::Held,
            held_until: from_millis(until),
        });
    }
    out.sort_by_key(|t| seats.iter().position(|s| *s == t.seat_id));
    Ok(out)
}

/// Marks `user`'s lapsed holds of `showtime` expired, so that the claims a hold counts
/// ([`showtime_row`]) read at most the limit's worth of held entries plus the lapses since the
/// last hold, however long the user's history.
fn retire_lapsed(c: &dyn Tx, now: Now, user: UserId, showtime: ShowtimeId) -> Result<()> {
    c.execute(
        "UPDATE tickets SET status = 'expired'
         WHERE user_id = ?1 AND showtime_id = ?2 AND status = 'held' AND held_until <= ?3",
        params![user, showtime, now.ms],
    )?;
    Ok(())
}

/// Gives a live hold of `user`'s back: the ticket is `released` and its seat available at once.
pub(crate) fn release(c: &dyn Tx, now: Now, user: UserId, id: TicketId) -> Result<Ticket> {
    let t = own_locked(c, now, user, id)?;
    if t.status != TicketStatus::Held {
        return Err(Error::TicketNotHeld(id));
    }
    c.execute(
        "UPDATE tickets SET status = 'released', ended_at = ?2 WHERE id = ?1",
        params![id, now.ms],
    )?;
    free_seat(c, t.showtime_id, t.seat_id, id, false)?;
    Ok(Ticket {
        status: TicketStatus::Released,
        ..t
    })
}

/// Extends a live hold of `user`'s to now + hold TTL, at most `max_hold_extensions` times.
pub(crate) fn extend(
    c: &dyn Tx,
    now: Now,
    cfg: &Config,
    user: UserId,
    id: TicketId,
) -> Result<Ticket> {
    let t = own_locked(c, now, user, id)?;
    match t.status {
        TicketStatus::Held => {}
        TicketStatus::Expired => return Err(Error::HoldExpired(id)),
        _ => return Err(Error::TicketNotHeld(id)),
    }
    let until = now.plus(cfg.hold_ttl);
    let changed = c.execute(
        "UPDATE tickets SET held_until = ?2, extensions = extensions + 1
         WHERE id = ?1 AND extensions < ?3",
        params![id, until, cfg.max_hold_extensions],
    )?;
    if changed == 0 {
        return Err(Error::ExtensionLimit {
            ticket: id,
            max: cfg.max_hold_extensions,
        });
    }
    c.execute(
        "UPDATE seats SET held_until = ?3 WHERE id = ?1 AND ticket_id = ?2",
        params![t.seat_id, id, until],
    )?;
    Ok(Ticket {
        held_until: from_millis(until),
        ..t
    })
}

/// Frees a seat that `ticket` claims (held, or `sold`: then it leaves its showtime's sold
/// count), so it is for sale again at once.
pub(crate) fn free_seat(
    c: &dyn Tx,
    showtime: ShowtimeId,
    seat: SeatId,
    ticket: TicketId,
    sold: bool,
) -> Result<()> {
    let stamps = seatmap::bump_counting_sold(c, showtime, &[seat], if sold { -1 } else { 0 })?;
    c.execute(
        "UPDATE seats SET sold = 0, ticket_id = NULL, held_until = NULL, version = ?3
         WHERE id = ?1 AND ticket_id = ?2",
        params![seat, ticket, stamps.of(seat)?],
    )?;
    Ok(())
}

/// A user's tickets, newest first.
pub(crate) fn of_user(c: &dyn Tx, now: Now, user: UserId) -> Result<Vec<Ticket>> {
    c.rows(
        &format!("{TICKET_FROM} WHERE t.user_id = ?1 ORDER BY t.id DESC"),
        params![user],
        ticket(now),
    )
}

/// Marks lapsed holds expired and frees their seats; returns how many.
pub(crate) fn sweep(c: &dyn Tx, now: Now) -> Result<usize> {
    // Seats, then tickets: the lock order. Freed seats change no status (a lapsed hold is
    // available already), but they leave the last lapse of their showtime's version: bump it,
    // so no map is named by an old version.
    let showtimes: Vec<ShowtimeId> = c.rows(
        "SELECT DISTINCT showtime_id FROM seats
         WHERE sold = 0 AND ticket_id IS NOT NULL AND held_until <= ?1",
        params![now.ms],
        |r| r.get(0),
    )?;
    let mut n = 0;
    for showtime in showtimes {
        // The lapsed seats are locked, then their tickets, then the showtime's version (a
        // hold's order: seats, the user's tickets, the version).
        let lapsed: Vec<SeatId> = c.rows_locked(
            "SELECT id FROM seats
             WHERE showtime_id = ?1 AND sold = 0 AND ticket_id IS NOT NULL AND held_until <= ?2
             ORDER BY id",
            params![showtime, now.ms],
            |r| r.get(0),
        )?;
        if lapsed.is_empty() {
            continue; // swept meanwhile by another process
        }
        // Every held ticket is its seat's claim, so the lapsed seats name the lapsed holds.
        n += c.execute(
            "UPDATE tickets SET status = 'expired' WHERE status = 'held' AND id IN
                 (SELECT ticket_id FROM seats
                  WHERE showtime_id = ?1 AND sold = 0 AND ticket_id IS NOT NULL AND held_until <= ?2)",
            params![showtime, now.ms],
        )?;
        seatmap::bump(c, showtime, &lapsed)?;
        c.execute(
            concat!(
                "UPDATE seats SET ticket_id = NULL, held_until = NULL, version = ",
                seatmap::stamp!(),
                " WHERE showtime_id = ?1 AND sold = 0 AND ticket_id IS NOT NULL AND held_until <= ?2"
            ),
            params![showtime, now.ms],
        )?;
    }
    Ok(n)
}

/// Holds now, across all showtimes (for metrics).
pub(crate) fn live_holds(c: &dyn Tx, now: Now) -> Result<i64> {
    c.value(
        "SELECT COUNT(*) FROM seats WHERE held_until > ?1",
        params![now.ms],
    )
}
