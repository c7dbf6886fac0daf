//! Seat maps at scale: a version that names a showtime's map, and what changed since one.
//!
//! Every write that changes a seat's status (a hold, a release, a payment, a cancellation, a
//! sweep) bumps a version counter and stamps the seat with the new value, in the same
//! transaction: O(1) per change. A showtime has [`SLOTS`] counters (`seat_versions`, one row
//! each), and a seat belongs to slot `id % SLOTS`: a write bumps the slots of the seats it
//! changes (in ascending slot order) and stamps each seat with its slot's counter. A slot's row
//! stays locked until the write commits, so within a slot stamps are in commit order — what a
//! diff relies on — while writes to seats of different slots of one showtime commit side by side
//! (on PostgreSQL; one counter for the whole showtime made every hold of a date commit one at a
//! time). A hold also lapses with no write at all (by the clock), so the map's version is the
//! counters together with the **last lapse** — the latest `held_until` that is not after now
//! among the showtime's held seats, one index seek. Both only grow while nothing is swept, and
//! a sweep bumps the counters. What changed since a version is two index ranges: seats stamped
//! after their slot's counter in it, and holds that lapsed after its last lapse.
//!
//! The same rows keep the showtime's count of sold seats, per slot ([`bump_counting_sold`]): a
//! payment counts its seats in the slot rows it bumps, so payments of one date do not queue on
//! one count either.

use crate::catalog::Seat;
use crate::db::sql::{self, params, ToParam, Tx};
use crate::db::Now;
use crate::error::{Entity, Error, Result};
use crate::ids::{ConcertId, SeatId, ShowtimeId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// [`SLOTS`] as a literal, for SQL text built with `concat!`.
macro_rules! slots {
    () => {
        32
    };
}
pub(crate) use slots;

/// Version counters per showtime (rows of `seat_versions`); a seat's slot is its id mod this.
/// Migration 6 makes this many rows per showtime.
pub(crate) const SLOTS: usize = slots!();

/// The counter a seat is stamped with: its slot's, as this transaction left it (an SQL
/// expression over the `seats` row being written).
macro_rules! stamp {
    () => {
        concat!(
            "(SELECT v.counter FROM seat_versions v WHERE v.showtime_id = seats.showtime_id AND v.slot = seats.id % ",
            $crate::seatmap::slots!(),
            ")"
        )
    };
}
pub(crate) use stamp;

/// The state of one showtime's seat map: its 32 slot counters and the last lapse, shown as
/// `"C0-C1-…-C31.LAPSE"` (or `"C.LAPSE"` when every counter is `C`). Equal versions mean equal
/// maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeatVersion {
    counters: [i64; SLOTS],
    lapse: i64,
}

impl SeatVersion {
    /// A version no map ever had: what changed since it is every seat.
    pub(crate) const UNKNOWN: SeatVersion = SeatVersion {
        counters: [i64::MAX; SLOTS],
        lapse: i64::MAX,
    };

    /// Whether every counter of `self` is at most `other`'s: `self` may be an earlier state of
    /// the map `other` is.
    fn not_after(&self, other: &SeatVersion) -> bool {
        self.counters
            .iter()
            .zip(&other.counters)
            .all(|(a, b)| a <= b)
    }
}

impl fmt::Display for SeatVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.counters[0];
        if self.counters.iter().all(|c| *c == first) {
            return write!(f, "{first}.{}", self.lapse);
        }
        for (i, c) in self.counters.iter().enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            write!(f, "{c}")?;
        }
        write!(f, ".{}", self.lapse)
    }
}

impl FromStr for SeatVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<SeatVersion> {
        let bad = || Error::InvalidRequest(format!("{s:?} is not a seat map version"));
        let (c, l) = s.trim().split_once('.').ok_or_else(bad)?;
        let number = |t: &str| match t.parse::<i64>() {
            Ok(n) if n >= 0 && !t.starts_with('+') => Ok(n),
            _ => Err(bad()),
        };
        let lapse = number(l)?;
        let parts: Vec<&str> = c.split('-').collect();
        let mut counters = [0; SLOTS];
        match parts.len() {
            1 => counters = [number(parts[0])?; SLOTS],
            SLOTS => {
                for (to, t) in counters.iter_mut().zip(parts) {
                    *to = number(t)?;
                }
            }
            _ => return Err(bad()),
        }
        Ok(SeatVersion { counters, lapse })
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

/// The slot of a seat.
fn slot(seat: SeatId) -> i64 {
    seat.get().rem_euclid(SLOTS as i64)
}

/// The counters a write bumped: what it stamps each seat of theirs with.
pub(crate) struct Stamps(Vec<(i64, i64)>);

impl Stamps {
    /// The counter to stamp `seat` with (a seat of the bumped slots).
    pub(crate) fn of(&self, seat: SeatId) -> Result<i64> {
        let slot = slot(seat);
        self.0
            .iter()
            .find(|(s, _)| *s == slot)
            .map(|(_, counter)| *counter)
            .ok_or_else(|| Error::internal(format!("seat {seat}'s version slot was not bumped")))
    }
}

/// How many of `seats` fall in each slot, by slot (ascending: the lock order).
fn per_slot(seats: &[SeatId]) -> BTreeMap<i64, i64> {
    let mut slots = BTreeMap::new();
    for s in seats {
        *slots.entry(slot(*s)).or_insert(0) += 1;
    }
    slots
}

/// Records that `seats` of `showtime` change status in this transaction: bumps their slots'
/// counters and gives them, to stamp the seats with ([`Stamps::of`], or `stamp!()` in SQL). The
/// slots are locked in ascending order, the one order every writer takes them in.
pub(crate) fn bump(c: &dyn Tx, showtime: ShowtimeId, seats: &[SeatId]) -> Result<Stamps> {
    bump_counting_sold(c, showtime, seats, 0)
}

/// [`bump`] that also counts `seats` as sold (`sold` = 1: a payment) or no longer sold (-1: a
/// cancellation) in their slots, in the same statement: a showtime's sold count is the sum of its
/// slots' (`sold_of!()`), so payments of one date in different slots do not queue on one count.
pub(crate) fn bump_counting_sold(
    c: &dyn Tx,
    showtime: ShowtimeId,
    seats: &[SeatId],
    sold: i64,
) -> Result<Stamps> {
    let slots = per_slot(seats);
    if slots.is_empty() {
        return Ok(Stamps(Vec::new()));
    }
    let keys: Vec<i64> = slots.keys().copied().collect();
    let list = sql::list(2, keys.len());
    let by_slot = [params![showtime], sql::to_params(&keys).as_slice()].concat();
    if keys.len() > 1 && c.takes_row_locks() {
        c.query_locked(
            &format!(
                "SELECT slot FROM seat_versions WHERE showtime_id = ?1 AND slot IN ({list})
                 ORDER BY slot"
            ),
            &by_slot,
            &mut |_| Ok(()),
        )?;
    }
    // Each slot's change of its sold count follows the slots: ?2 is changed by ?(2 + slots).
    let (counting, changes) = if sold == 0 {
        (String::new(), Vec::new())
    } else {
        let whens: String = (0..keys.len())
            .map(|i| {
                format!(
                    " WHEN ?{} THEN CAST(?{} AS BIGINT)",
                    2 + i,
                    2 + keys.len() + i
                )
            })
            .collect();
        let changes: Vec<i64> = slots.values().map(|n| n * sold).collect();
        (format!(", sold = sold + CASE slot{whens} END"), changes)
    };
    let stamps = c.rows(
        &format!(
            "UPDATE seat_versions SET counter = counter + 1{counting}
             WHERE showtime_id = ?1 AND slot IN ({list}) RETURNING slot, counter"
        ),
        &[by_slot.as_slice(), sql::to_params(&changes).as_slice()].concat(),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    counted(stamps.len(), keys.len(), showtime)?;
    Ok(Stamps(stamps))
}

/// A showtime's sold seats as its slots count them (an SQL integer expression over a `showtimes`
/// row named `s`).
macro_rules! sold_of {
    () => {
        "CAST((SELECT COALESCE(SUM(v.sold), 0) FROM seat_versions v WHERE v.showtime_id = s.id) AS BIGINT)"
    };
}
pub(crate) use sold_of;

/// [`bump`] for a write that may change any seat of `showtime` (a sweep, a showtime called
/// off): every slot, in ascending order.
pub(crate) fn bump_all(c: &dyn Tx, showtime: ShowtimeId) -> Result<()> {
    if c.takes_row_locks() {
        c.query_locked(
            "SELECT slot FROM seat_versions WHERE showtime_id = ?1 ORDER BY slot",
            params![showtime],
            &mut |_| Ok(()),
        )?;
    }
    let n = c.execute(
        "UPDATE seat_versions SET counter = counter + 1 WHERE showtime_id = ?1",
        params![showtime],
    )?;
    counted(n, SLOTS, showtime)
}

fn counted(n: usize, want: usize, showtime: ShowtimeId) -> Result<()> {
    if n != want {
        return Err(Error::internal(format!(
            "showtime {showtime} has {n} of the {want} seat version slots written"
        )));
    }
    Ok(())
}

/// Makes the version slots of a new showtime.
pub(crate) fn create(c: &dyn Tx, showtime: ShowtimeId) -> Result<()> {
    let n = c.execute(
        concat!(
            "INSERT INTO seat_versions (showtime_id, slot, counter)
             WITH RECURSIVE k (slot) AS (SELECT 0 UNION ALL SELECT slot + 1 FROM k WHERE slot + 1 < ",
            slots!(),
            ") SELECT ?1, slot, 0 FROM k"
        ),
        params![showtime],
    )?;
    counted(n, SLOTS, showtime)
}

/// The version of `showtime`'s map now; `not_found` unless it is `concert`'s.
pub(crate) fn version(
    c: &dyn Tx,
    now: Now,
    concert: ConcertId,
    showtime: ShowtimeId,
) -> Result<SeatVersion> {
    let of: ConcertId = c
        .row(
            "SELECT concert_id FROM showtimes WHERE id = ?1",
            params![showtime],
            |r| r.get(0),
        )?
        .ok_or(Error::NotFound(Entity::Showtime))?;
    if of != concert {
        return Err(crate::catalog::not_of_concert(c, concert)?);
    }
    let mut counters = [0; SLOTS];
    let mut n = 0;
    c.query(
        "SELECT slot, counter FROM seat_versions WHERE showtime_id = ?1",
        params![showtime],
        &mut |r| {
            let slot: i64 = r.get(0)?;
            let to = usize::try_from(slot)
                .ok()
                .and_then(|i| counters.get_mut(i))
                .ok_or_else(|| Error::internal(format!("seat version slot {slot}")))?;
            *to = r.get(1)?;
            n += 1;
            Ok(())
        },
    )?;
    counted(n, SLOTS, showtime)?;
    let lapse: Option<i64> = c.value(
        "SELECT MAX(held_until) FROM seats
         WHERE showtime_id = ?1 AND held_until IS NOT NULL AND held_until <= ?2",
        params![showtime, now.ms],
    )?;
    Ok(SeatVersion {
        counters,
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
    let known = since.not_after(&version) && since.lapse <= now.ms;
    let seats = if !known {
        crate::catalog::list_seats(c, now, concert, showtime)?
    } else {
        // Stamped after their slot's counter in `since`: an index range from the least of them,
        // each seat then compared with its own slot's (?4 is slot 0's).
        let least = since.counters.iter().copied().min().unwrap_or(0);
        let mut args: Vec<&dyn ToParam> = vec![&showtime, &now.ms, &least];
        args.extend(since.counters.iter().map(|c| c as &dyn ToParam));
        let mut seats = crate::catalog::seats_where(c, now, &SINCE_CONDITION, &args)?;
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

/// `showtime_id = ?1 AND version > ?3 AND version > CASE id % SLOTS WHEN 0 THEN ?4 … END`.
static SINCE_CONDITION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut s = format!("showtime_id = ?1 AND version > ?3 AND version > CASE id % {SLOTS}");
    for k in 0..SLOTS {
        // Cast: PostgreSQL cannot infer a parameter's type from a CASE branch.
        s.push_str(&format!(" WHEN {k} THEN CAST(?{} AS BIGINT)", k + 4));
    }
    s.push_str(" END");
    s
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_back_as_written() {
        let v = SeatVersion {
            counters: [42; SLOTS],
            lapse: 1_767_312_000_000,
        };
        assert_eq!(v.to_string(), "42.1767312000000");
        assert_eq!(v.to_string().parse::<SeatVersion>().unwrap(), v);
        let mut w = v;
        w.counters[1] = 43;
        w.counters[SLOTS - 1] = 7;
        let text = w.to_string();
        assert!(text.starts_with("42-43-42-"), "{text}");
        assert!(text.ends_with("-7.1767312000000"), "{text}");
        assert_eq!(text.parse::<SeatVersion>().unwrap(), w);
        let mut later = v;
        later.counters[1] = 43;
        assert!(v.not_after(&later) && !later.not_after(&v));
        assert!(
            !v.not_after(&w) && !w.not_after(&v),
            "neither is before the other"
        );
        let short = text.replacen("42-", "", 1);
        for bad in [
            "", "42", "a.b", "-1.0", "1.-1", "1.2.3", "+1.0", "1-2.0", &short,
        ] {
            assert!(bad.parse::<SeatVersion>().is_err(), "{bad}");
        }
    }
}
