//! Reports for operators: per showtime, its seats by status and its money.

use crate::db::sql::{params, Tx};
use crate::db::Now;
use crate::error::Result;
use crate::ids::{ConcertId, ShowtimeId};
use crate::money::Points;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One showtime's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShowtimeReport {
    /// The showtime.
    pub showtime_id: ShowtimeId,
    /// Its concert.
    pub concert_id: ConcertId,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// Whether it was called off.
    pub cancelled: bool,
    /// Seats in all.
    pub total: i64,
    /// Seats neither held nor sold now.
    pub available: i64,
    /// Seats held now.
    pub held: i64,
    /// Seats sold.
    pub sold: i64,
    /// Points taken: payments less refunds (so the prices of tickets still paid, plus the fees
    /// kept on cancelled ones).
    pub revenue: Points,
    /// Points refunded for cancelled tickets.
    pub refunded: Points,
    /// Points kept as cancellation fees.
    pub fees: Points,
}

/// Every showtime's report (or one's), by showtime id.
pub(crate) fn report(
    c: &dyn Tx,
    now: Now,
    only: Option<ShowtimeId>,
) -> Result<Vec<ShowtimeReport>> {
    let (from, to) = match only {
        Some(id) => (id.get(), id.get()),
        None => (1, i64::MAX),
    };
    c.rows(
        concat!(
            "SELECT s.id, s.concert_id, s.starts_at, s.cancelled_at IS NOT NULL, s.total_seats,
                (SELECT COUNT(*) FROM seats h
                  WHERE h.showtime_id = s.id AND h.sold = 0 AND h.held_until > ?1),
                ",
            crate::seatmap::sold_of!(),
            ",
                CAST(COALESCE(m.paid, 0) + COALESCE(m.fees, 0) AS BIGINT),
                CAST(COALESCE(m.refunded, 0) AS BIGINT),
                CAST(COALESCE(m.fees, 0) AS BIGINT)
         FROM showtimes s
         LEFT JOIN (SELECT showtime_id,
                           SUM(CASE WHEN status = 'paid' THEN price ELSE 0 END) AS paid,
                           SUM(CASE WHEN status = 'cancelled' THEN refund ELSE 0 END) AS refunded,
                           SUM(CASE WHEN status = 'cancelled' THEN fee ELSE 0 END) AS fees
                    FROM tickets WHERE status IN ('paid', 'cancelled') AND showtime_id BETWEEN ?2 AND ?3
                    GROUP BY showtime_id) m ON m.showtime_id = s.id
         WHERE s.id BETWEEN ?2 AND ?3
         ORDER BY s.id"
        ),
        params![now.ms, from, to],
        |r| {
            let (total, held, sold): (i64, i64, i64) = (r.get(4)?, r.get(5)?, r.get(6)?);
            Ok(ShowtimeReport {
                showtime_id: r.get(0)?,
                concert_id: r.get(1)?,
                starts_at: crate::clock::from_millis(r.get(2)?),
                cancelled: r.get(3)?,
                total,
                available: total - held - sold,
                held,
                sold,
                revenue: r.get(7)?,
                refunded: r.get(8)?,
                fees: r.get(9)?,
            })
        },
    )
}
