//! Seat maps at scale: a version that names a showtime's map, and what changed since one.
//!
//! Every write that changes a seat's status (a hold, a release, a payment, a cancellation, a
//! sweep) bumps its showtime's `seat_version` and stamps the seat with the new value, in the same
//! transaction: O(1) per change. A hold also lapses with no write at all (by the clock), so the
//! map's version is that counter together with the **last lapse** — the latest `held_until`
//! that is not after now among the showtime's held seats, one index seek. Both only grow while
//! nothing is swept, and a sweep bumps the counter. What changed since a version is two index
//! ranges: seats stamped after its counter, and holds that lapsed after its last lapse.

use crate::catalog::Seat;
use crate::db::sql::{params, Tx};
use crate::db::Now;
use crate::error::{Entity, Error, Result};
use crate::ids::{ConcertId, SeatId, ShowtimeId};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The state of one showtime's seat map: two numbers, shown as `"COUNTER.LAPSE"`. Equal versions
/// mean equal maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeatVersion {
    counter: i64,
    lapse: i64,
}

impl SeatVersion {
    /// A version no map ever had: what changed since it is every seat.
    pub(crate) const UNKNOWN: SeatVersion = SeatVersion {
        counter: i64::MAX,
        lapse: i64::MAX,
    };
}

impl fmt::Display for SeatVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.counter, self.lapse)
    }
}

impl FromStr for SeatVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<SeatVersion> {
        let bad = || Error::InvalidRequest(format!("{s:?} is not a seat map version"));
        let (c, l) = s.trim().split_once('.').ok_or_else(bad)?;
        let counter = c.parse().map_err(|_| bad())?;
        let lapse = l.parse().map_err(|_| bad())?;
        if counter < 0 || lapse < 0 {
            return Err(bad());
        }
        Ok(SeatVersion { counter, lapse })
    }
}

impl Serialize for SeatVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A showtime's whole seat map and its version, read in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeatMap {
    /// The version this map is at.
    pub version: SeatVersion,
    /// Every seat, by number.
    pub seats: Vec<Seat>,
}

/// The seats whose status changed since a version (all of them when that version is not one
/// this map had), and the version they bring the map to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeatChanges {
    /// The version after these changes.
    pub version: SeatVersion,
    /// The seats that changed, by number, with their status now.
    pub seats: Vec<Seat>,
}

/// Records that seats of `showtime` change status in this transaction: bumps its version and
/// returns the value to stamp the changed seats with.
pub(crate) fn bump(c: &dyn Tx, showtime: ShowtimeId) -> Result<i64> {
    c.value(
        "UPDATE showtimes SET seat_version = seat_version + 1 WHERE id = ?1 RETURNING seat_version",
        params![showtime],
    )
}

/// The version of `showtime`'s map now; `not_found` unless it is `concert`'s.
pub(crate) fn version(
    c: &dyn Tx,
    now: Now,
    concert: ConcertId,
    showtime: ShowtimeId,
) -> Result<SeatVersion> {
    let (of, counter): (ConcertId, i64) = c
        .row(
            "SELECT concert_id, seat_version FROM showtimes WHERE id = ?1",
            params![showtime],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .ok_or(Error::NotFound(Entity::Showtime))?;
    if of != concert {
        return Err(crate::catalog::not_of_concert(c, concert)?);
    }
    let lapse: Option<i64> = c.value(
        "SELECT MAX(held_until) FROM seats
         WHERE showtime_id = ?1 AND held_until IS NOT NULL AND held_until <= ?2",
        params![showtime, now.ms],
    )?;
    Ok(SeatVersion {
        counter,
        lapse: lapse.unwrap_or(0),
    })
}

/// The seats of `showtime` that changed status after `since` (every seat when `since` is not a
/// version this map had: later than now, or of another counter history).
pub(crate) fn since(
    c: &dyn Tx,
    now: Now,
    concert: ConcertId,
    showtime: ShowtimeId,
    since: SeatVersion,
) -> Result<SeatChanges> {
    let version = version(c, now, concert, showtime)?;
    let known = since.counter <= version.counter && since.lapse <= now.ms;
    let seats = if !known {
        crate::catalog::list_seats(c, now, concert, showtime)?
    } else {
        let mut seats = crate::catalog::seats_where(
            c,
            now,
            "showtime_id = ?1 AND version > ?3",
            params![showtime, now.ms, since.counter],
        )?;
        let lapsed = crate::catalog::seats_where(
            c,
            now,
            "showtime_id = ?1 AND held_until > ?3 AND held_until <= ?2",
            params![showtime, now.ms, since.lapse],
        )?;
        let seen: std::collections::HashSet<SeatId> = seats.iter().map(|s| s.id).collect();
        seats.extend(lapsed.into_iter().filter(|s| !seen.contains(&s.id)));
        seats.sort_by_key(|s| s.number);
        seats
    };
    Ok(SeatChanges { version, seats })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_back_as_written() {
        let v = SeatVersion {
            counter: 42,
            lapse: 1_767_312_000_000,
        };
        assert_eq!(v.to_string(), "42.1767312000000");
        assert_eq!(v.to_string().parse::<SeatVersion>().unwrap(), v);
        for bad in ["", "42", "a.b", "-1.0", "1.-1", "1.2.3"] {
            assert!(bad.parse::<SeatVersion>().is_err(), "{bad}");
        }
    }
}
