//! The catalog: concerts, their showtimes (dates), and the seats of each showtime.
//!
//! A seat's status is decided against `now` on every read: `sold`, else `held` while its
//! `held_until` is after now, else `available`. No job has to run for a hold to lapse.

use crate::clock::{from_millis, to_millis};
use crate::db::{Now, OptionalRow};
use crate::error::{Error, Result};
use crate::ids::{ConcertId, SeatId, ShowtimeId};
use crate::Booking;
use chrono::{DateTime, Datelike, Duration as ChronoDuration, FixedOffset, TimeZone, Utc};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

/// The most seats one showtime may have.
pub const MAX_SEATS: u32 = 200_000;
/// The longest title or venue name.
pub const MAX_NAME_CHARS: usize = 200;

/// A concert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Concert {
    /// Its id.
    pub id: ConcertId,
    /// Its title.
    pub title: String,
    /// Where it is played.
    pub venue: String,
}

/// One date of a concert ("ShowTime").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Showtime {
    /// Its id.
    pub id: ShowtimeId,
    /// The concert.
    pub concert_id: ConcertId,
    /// When it starts (UTC).
    pub starts_at: DateTime<Utc>,
    /// Seats in all.
    pub total_seats: i64,
    /// Seats neither sold nor held now.
    pub available_seats: i64,
}

/// A seat's status now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeatStatus {
    /// Free to hold.
    Available,
    /// Held by someone until their hold lapses.
    Held,
    /// Paid for.
    Sold,
}

/// A seat of a showtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seat {
    /// Its id.
    pub id: SeatId,
    /// Its number, 1..N within the showtime.
    pub number: i64,
    /// Its price in points.
    pub price: i64,
    /// Its status now.
    pub status: SeatStatus,
}

/// A showtime's pricing: one price for every seat, or priced sections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pricing {
    /// Every seat costs this.
    Flat(i64),
    /// Seats `from..=to` cost `price`; the ranges must cover 1..N exactly once.
    Sections(Vec<PriceRange>),
}

/// A priced section of seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRange {
    /// First seat number of the section.
    pub from: u32,
    /// Last seat number of the section (inclusive).
    pub to: u32,
    /// Price of each seat in it.
    pub price: i64,
}

/// A showtime to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewShowtime {
    /// When it starts (any offset; stored as UTC). Must be in the future.
    pub starts_at: DateTime<FixedOffset>,
    /// How many seats (numbered 1..N).
    pub seats: u32,
    /// Their prices.
    pub price: Pricing,
}

/// A concert to add, with its showtimes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConcert {
    /// Title.
    pub title: String,
    /// Venue.
    #[serde(default)]
    pub venue: String,
    /// Its dates.
    #[serde(default)]
    pub showtimes: Vec<NewShowtime>,
}

/// A catalog file (`seed --file`): loaded in one transaction, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// The concerts.
    pub concerts: Vec<NewConcert>,
}

impl CatalogFile {
    /// Seats in the whole file (for progress reports).
    pub fn total_seats(&self) -> u64 {
        self.concerts
            .iter()
            .flat_map(|c| &c.showtimes)
            .map(|s| u64::from(s.seats))
            .sum()
    }
}

/// What a seed loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeedReport {
    /// Concerts added.
    pub concerts: u64,
    /// Showtimes added.
    pub showtimes: u64,
    /// Seats added.
    pub seats: u64,
}

/// A small, realistic demo catalog: three concerts with dates over the coming weeks (evenings,
/// Korea time) and priced sections.
pub fn demo_catalog(now: DateTime<Utc>) -> CatalogFile {
    let kst = FixedOffset::east_opt(9 * 3600).expect("valid offset");
    let today = now.with_timezone(&kst).date_naive();
    let evening = |days: i64| {
        let d = today + ChronoDuration::days(days);
        kst.with_ymd_and_hms(d.year(), d.month(), d.day(), 19, 30, 0)
            .single()
            .expect("a valid evening")
    };
    let sections = |vip: i64, r: i64, s: i64| {
        Pricing::Sections(vec![
            PriceRange {
                from: 1,
                to: 10,
                price: vip,
            },
            PriceRange {
                from: 11,
                to: 30,
                price: r,
            },
            PriceRange {
                from: 31,
                to: 50,
                price: s,
            },
        ])
    };
    let show = |days: i64, price: Pricing| NewShowtime {
        starts_at: evening(days),
        seats: 50,
        price,
    };
    CatalogFile {
        concerts: vec![
            NewConcert {
                title: "Aurora Strings: Winter Gala".into(),
                venue: "Seoul Arts Center Concert Hall".into(),
                showtimes: vec![
                    show(7, sections(150_000, 110_000, 80_000)),
                    show(8, sections(150_000, 110_000, 80_000)),
                    show(14, sections(150_000, 110_000, 80_000)),
                ],
            },
            NewConcert {
                title: "Neon Tide Live".into(),
                venue: "KSPO Dome".into(),
                showtimes: vec![
                    show(10, sections(198_000, 154_000, 99_000)),
                    show(11, sections(198_000, 154_000, 99_000)),
                ],
            },
            NewConcert {
                title: "Jazz at Midnight".into(),
                venue: "Blue Note Hall".into(),
                showtimes: vec![
                    show(5, Pricing::Flat(55_000)),
                    show(12, Pricing::Flat(55_000)),
                ],
            },
        ],
    }
}

fn check_name(what: &str, s: &str, required: bool) -> Result<()> {
    if required && s.trim().is_empty() {
        return Err(Error::InvalidRequest(format!("{what} must not be empty")));
    }
    if s.chars().count() > MAX_NAME_CHARS {
        return Err(Error::InvalidRequest(format!(
            "{what} is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_price(p: i64) -> Result<()> {
    if p <= 0 || p > 1_000_000_000 {
        return Err(Error::InvalidAmount(format!(
            "price {p} must be between 1 and 1000000000"
        )));
    }
    Ok(())
}

impl Pricing {
    /// Checks the pricing against `seats` and returns the price of each seat (index = number-1).
    pub fn prices(&self, seats: u32) -> Result<Vec<i64>> {
        match self {
            Pricing::Flat(p) => {
                check_price(*p)?;
                Ok(vec![*p; seats as usize])
            }
            Pricing::Sections(ranges) => {
                let mut prices = vec![0i64; seats as usize];
                for r in ranges {
                    check_price(r.price)?;
                    if r.from == 0 || r.from > r.to || r.to > seats {
                        return Err(Error::InvalidRequest(format!(
                            "price range {}..{} is outside seats 1..{seats}",
                            r.from, r.to
                        )));
                    }
                    for n in r.from..=r.to {
                        let slot = &mut prices[(n - 1) as usize];
                        if *slot != 0 {
                            return Err(Error::InvalidRequest(format!(
                                "seat {n} is in two price ranges"
                            )));
                        }
                        *slot = r.price;
                    }
                }
                if let Some(n) = prices.iter().position(|p| *p == 0) {
                    return Err(Error::InvalidRequest(format!(
                        "seat {} is in no price range",
                        n + 1
                    )));
                }
                Ok(prices)
            }
        }
    }
}

pub(crate) fn add_concert(c: &Connection, title: &str, venue: &str) -> Result<ConcertId> {
    check_name("title", title, true)?;
    check_name("venue", venue, false)?;
    c.prepare_cached("INSERT INTO concerts (title, venue) VALUES (?1, ?2)")?
        .execute(params![title.trim(), venue.trim()])?;
    Ok(ConcertId(c.last_insert_rowid()))
}

pub(crate) fn add_showtime(
    c: &Connection,
    now: Now,
    concert: ConcertId,
    s: &NewShowtime,
    progress: &mut dyn FnMut(u64),
) -> Result<ShowtimeId> {
    if s.seats == 0 || s.seats > MAX_SEATS {
        return Err(Error::InvalidRequest(format!(
            "seats must be between 1 and {MAX_SEATS}"
        )));
    }
    let starts = to_millis(s.starts_at.with_timezone(&Utc));
    if starts <= now.ms {
        return Err(Error::InvalidRequest(format!(
            "starts_at {} is not in the future",
            s.starts_at.to_rfc3339()
        )));
    }
    let prices = s.price.prices(s.seats)?;
    if !concert_exists(c, concert)? {
        return Err(Error::NotFound("concert"));
    }
    c.prepare_cached(
        "INSERT INTO showtimes (concert_id, starts_at, total_seats) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![concert, starts, s.seats])?;
    let id = c.last_insert_rowid();
    let mut insert =
        c.prepare_cached("INSERT INTO seats (showtime_id, number, price) VALUES (?1, ?2, ?3)")?;
    for (i, price) in prices.iter().enumerate() {
        insert.execute(params![id, i as i64 + 1, price])?;
        if (i + 1) % 1024 == 0 {
            progress(1024);
        }
    }
    progress(u64::from(s.seats) % 1024);
    Ok(ShowtimeId(id))
}

fn concert_exists(c: &Connection, id: ConcertId) -> Result<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM concerts WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional_row()?
        .is_some())
}

pub(crate) fn list_concerts(c: &Connection) -> Result<Vec<Concert>> {
    let mut stmt = c.prepare_cached("SELECT id, title, venue FROM concerts ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(Concert {
            id: r.get(0)?,
            title: r.get(1)?,
            venue: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn list_showtimes(
    c: &Connection,
    now: Now,
    concert: ConcertId,
    include_past: bool,
) -> Result<Vec<Showtime>> {
    if !concert_exists(c, concert)? {
        return Err(Error::NotFound("concert"));
    }
    let mut stmt = c.prepare_cached(
        "SELECT s.id, s.concert_id, s.starts_at, s.total_seats,
                s.total_seats - s.sold_seats - (SELECT COUNT(*) FROM tickets t
                    WHERE t.showtime_id = s.id AND t.status = 'held' AND t.held_until > ?2)
         FROM showtimes s
         WHERE s.concert_id = ?1 AND (?3 OR s.starts_at > ?2)
         ORDER BY s.starts_at, s.id",
    )?;
    let rows = stmt.query_map(params![concert, now.ms, include_past], |r| {
        Ok(Showtime {
            id: r.get(0)?,
            concert_id: r.get(1)?,
            starts_at: from_millis(r.get(2)?),
            total_seats: r.get(3)?,
            available_seats: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The SQL expression for a seat's status at `?now` (the one place this rule is written).
pub(crate) const SEAT_STATUS_SQL: &str =
    "CASE WHEN sold = 1 THEN 'sold' WHEN held_until > ?2 THEN 'held' ELSE 'available' END";

fn parse_seat_status(s: &str) -> SeatStatus {
    match s {
        "sold" => SeatStatus::Sold,
        "held" => SeatStatus::Held,
        _ => SeatStatus::Available,
    }
}

pub(crate) fn list_seats(
    c: &Connection,
    now: Now,
    concert: ConcertId,
    showtime: ShowtimeId,
) -> Result<Vec<Seat>> {
    let of: Option<i64> = c
        .prepare_cached("SELECT concert_id FROM showtimes WHERE id = ?1")?
        .query_row([showtime], |r| r.get(0))
        .optional_row()?;
    match of {
        Some(cid) if cid == concert.0 => {}
        _ if !concert_exists(c, concert)? => return Err(Error::NotFound("concert")),
        _ => return Err(Error::NotFound("showtime")),
    }
    let mut stmt = c.prepare_cached(&format!(
        "SELECT id, number, price, {SEAT_STATUS_SQL} FROM seats WHERE showtime_id = ?1 ORDER BY number"
    ))?;
    let rows = stmt.query_map(params![showtime, now.ms], |r| {
        Ok(Seat {
            id: r.get(0)?,
            number: r.get(1)?,
            price: r.get(2)?,
            status: parse_seat_status(r.get_ref(3)?.as_str()?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Booking {
    /// Adds a concert.
    pub fn add_concert(&self, title: &str, venue: &str) -> Result<ConcertId> {
        self.db.write(|c, _| add_concert(c, title, venue))
    }

    /// Adds a showtime of `concert` with its seats, in one transaction.
    pub fn add_showtime(&self, concert: ConcertId, s: &NewShowtime) -> Result<ShowtimeId> {
        self.add_showtime_with_progress(concert, s, &mut |_| {})
    }

    /// [`Booking::add_showtime`], calling `progress(n)` as each `n` more seats are written.
    pub fn add_showtime_with_progress(
        &self,
        concert: ConcertId,
        s: &NewShowtime,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ShowtimeId> {
        self.db
            .write(|c, now| add_showtime(c, now, concert, s, progress))
    }

    /// Loads a whole catalog in one transaction: all of it, or (on any error) none of it.
    /// `progress(n)` is called as each `n` more seats are written.
    pub fn seed(&self, cat: &CatalogFile, progress: &mut dyn FnMut(u64)) -> Result<SeedReport> {
        self.db.write(|c, now| {
            let mut report = SeedReport {
                concerts: 0,
                showtimes: 0,
                seats: 0,
            };
            for (i, concert) in cat.concerts.iter().enumerate() {
                let id = add_concert(c, &concert.title, &concert.venue)
                    .map_err(|e| in_item(e, &format!("concert #{}", i + 1)))?;
                report.concerts += 1;
                for (j, s) in concert.showtimes.iter().enumerate() {
                    add_showtime(c, now, id, s, progress).map_err(|e| {
                        in_item(e, &format!("concert #{} showtime #{}", i + 1, j + 1))
                    })?;
                    report.showtimes += 1;
                    report.seats += u64::from(s.seats);
                }
            }
            Ok(report)
        })
    }

    /// Seeds [`demo_catalog`] if the database has no concerts; returns what was loaded, if anything.
    pub fn seed_demo_if_empty(&self) -> Result<Option<SeedReport>> {
        if !self.list_concerts()?.is_empty() {
            return Ok(None);
        }
        let cat = demo_catalog(self.clock.now());
        self.seed(&cat, &mut |_| {}).map(Some)
    }

    /// Every concert, by id.
    pub fn list_concerts(&self) -> Result<Vec<Concert>> {
        self.db.read(|c, _| list_concerts(c))
    }

    /// The bookable showtimes (starting in the future) of `concert`, by start time;
    /// `not_found` for an unknown concert.
    pub fn list_showtimes(&self, concert: ConcertId) -> Result<Vec<Showtime>> {
        self.db
            .read(|c, now| list_showtimes(c, now, concert, false))
    }

    /// Every showtime of `concert`, past ones included (for operators).
    pub fn list_all_showtimes(&self, concert: ConcertId) -> Result<Vec<Showtime>> {
        self.db.read(|c, now| list_showtimes(c, now, concert, true))
    }

    /// The seats of `showtime` by number, with their status now; `not_found` for an unknown
    /// concert or a showtime that is not that concert's.
    pub fn list_seats(&self, concert: ConcertId, showtime: ShowtimeId) -> Result<Vec<Seat>> {
        self.db.read(|c, now| list_seats(c, now, concert, showtime))
    }

    /// The seats of `showtime`, whichever concert it belongs to (for operators).
    pub fn showtime_seats(&self, showtime: ShowtimeId) -> Result<Vec<Seat>> {
        self.db.read(|c, now| {
            let concert: ConcertId = c
                .query_row(
                    "SELECT concert_id FROM showtimes WHERE id = ?1",
                    [showtime],
                    |r| r.get(0),
                )
                .optional_row()?
                .ok_or(Error::NotFound("showtime"))?;
            list_seats(c, now, concert, showtime)
        })
    }
}

fn in_item(e: Error, item: &str) -> Error {
    match e {
        Error::InvalidRequest(m) => Error::InvalidRequest(format!("{item}: {m}")),
        Error::InvalidAmount(m) => Error::InvalidAmount(format!("{item}: {m}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_must_cover_every_seat_once() {
        let r = |from, to, price| PriceRange { from, to, price };
        let ok = Pricing::Sections(vec![r(1, 2, 10), r(3, 4, 5)]);
        assert_eq!(ok.prices(4).unwrap(), vec![10, 10, 5, 5]);
        let gap = Pricing::Sections(vec![r(1, 2, 10)]);
        assert!(gap.prices(4).unwrap_err().to_string().contains("seat 3"));
        let overlap = Pricing::Sections(vec![r(1, 3, 10), r(3, 4, 5)]);
        assert!(overlap.prices(4).is_err());
        let outside = Pricing::Sections(vec![r(1, 5, 10)]);
        assert!(outside.prices(4).is_err());
        assert_eq!(
            Pricing::Flat(0).prices(1).unwrap_err().code(),
            "invalid_amount"
        );
    }

    #[test]
    fn catalog_files_parse_both_price_shapes_and_reject_unknown_fields() {
        let f: CatalogFile = serde_json::from_str(
            r#"{"concerts":[{"title":"T","venue":"V","showtimes":[
                {"starts_at":"2031-05-01T19:00:00+09:00","seats":50,"price":80000},
                {"starts_at":"2031-05-02T19:00:00+09:00","seats":20,"price":[{"from":1,"to":20,"price":9}]}]}]}"#,
        )
        .unwrap();
        assert_eq!(f.total_seats(), 70);
        assert!(serde_json::from_str::<CatalogFile>(r#"{"concerts":[],"x":1}"#).is_err());
    }

    #[test]
    fn demo_catalog_is_in_the_future_and_valid() {
        let now = Utc::now();
        let cat = demo_catalog(now);
        assert!(cat.concerts.len() >= 3);
        for s in cat.concerts.iter().flat_map(|c| &c.showtimes) {
            assert!(s.starts_at.with_timezone(&Utc) > now);
            s.price.prices(s.seats).unwrap();
        }
    }
}
