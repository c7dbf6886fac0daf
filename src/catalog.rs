//! The catalog: concerts, their showtimes (dates), and the seats of each showtime.
//!
//! A seat's status is decided against `now` on every read: `sold`, else `held` while its
//! `held_until` is after now, else `available`. No job has to run for a hold to lapse.

use crate::clock::{from_millis, to_millis};
use crate::db::sql::{params, stored_enum, ToParam, Tx};
use crate::db::Now;
use crate::error::{Entity, Error, Result};
use crate::ids::{ConcertId, SeatId, ShowtimeId};
use crate::money::Points;
use chrono::{DateTime, Datelike, Duration as ChronoDuration, FixedOffset, TimeZone, Utc};
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
    /// When its sale opens (`None`: it is open); before then holds get `sale_not_open`.
    pub sale_opens_at: Option<DateTime<Utc>>,
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

stored_enum!(SeatStatus, "seat status", {
    SeatStatus::Available => "available",
    SeatStatus::Held => "held",
    SeatStatus::Sold => "sold",
});

/// A seat of a showtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seat {
    /// Its id.
    pub id: SeatId,
    /// Its number, 1..N within the showtime.
    pub number: i64,
    /// Its price in points.
    pub price: Points,
    /// Its status now.
    pub status: SeatStatus,
}

/// A showtime's pricing: one price for every seat, or priced sections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pricing {
    /// Every seat costs this.
    Flat(Points),
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
    pub price: Points,
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
    /// When its sale opens (before the show starts); omitted: at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_opens_at: Option<DateTime<FixedOffset>>,
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
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
        let range = |from, to, price| PriceRange {
            from,
            to,
            price: Points::new(price),
        };
        Pricing::Sections(vec![range(1, 10, vip), range(11, 30, r), range(31, 50, s)])
    };
    let show = |days: i64, price: Pricing| NewShowtime {
        starts_at: evening(days),
        seats: 50,
        price,
        sale_opens_at: None,
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
                    show(5, Pricing::Flat(Points::new(55_000))),
                    show(12, Pricing::Flat(Points::new(55_000))),
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

/// The highest price of one seat.
pub const MAX_PRICE: Points = Points::new(1_000_000_000);

fn check_price(p: Points) -> Result<()> {
    if p <= Points::ZERO || p > MAX_PRICE {
        return Err(Error::InvalidAmount(format!(
            "price {p} must be between 1 and 1000000000"
        )));
    }
    Ok(())
}

impl Pricing {
    /// Checks the pricing against `seats` (1..=[`MAX_SEATS`]) and returns the price of each seat
    /// (index = number-1).
    pub fn prices(&self, seats: u32) -> Result<Vec<Points>> {
        // Before allocating one price per seat: a catalog file's `seats` is any u32.
        if seats == 0 || seats > MAX_SEATS {
            return Err(Error::InvalidRequest(format!(
                "seats must be between 1 and {MAX_SEATS}"
            )));
        }
        match self {
            Pricing::Flat(p) => {
                check_price(*p)?;
                Ok(vec![*p; seats as usize])
            }
            Pricing::Sections(ranges) => {
                let mut prices = vec![Points::ZERO; seats as usize];
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
                        if *slot != Points::ZERO {
                            return Err(Error::InvalidRequest(format!(
                                "seat {n} is in two price ranges"
                            )));
                        }
                        *slot = r.price;
                    }
                }
                if let Some(n) = prices.iter().position(|p| *p == Points::ZERO) {
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

pub(crate) fn add_concert(c: &dyn Tx, title: &str, venue: &str) -> Result<ConcertId> {
    check_name("title", title, true)?;
    check_name("venue", venue, false)?;
    let id = c.insert(
        "INSERT INTO concerts (title, venue) VALUES (?1, ?2) RETURNING id",
        params![title.trim(), venue.trim()],
    )?;
    ConcertId::new(id)
}

pub(crate) fn add_showtime(
    c: &dyn Tx,
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
    let opens = s.sale_opens_at.map(|t| to_millis(t.with_timezone(&Utc)));
    if opens.is_some_and(|t| t >= starts) {
        return Err(Error::InvalidRequest(
            "sale_opens_at must be before starts_at".into(),
        ));
    }
    if !concert_exists(c, concert)? {
        return Err(Error::NotFound(Entity::Concert));
    }
    let id = ShowtimeId::new(c.insert(
        "INSERT INTO showtimes (concert_id, starts_at, total_seats, sale_opens_at)
         VALUES (?1, ?2, ?3, ?4) RETURNING id",
        params![concert, starts, s.seats, opens],
    )?)?;
    crate::seatmap::create(c, id)?;
    // Many seats per statement: one round trip per chunk on a server engine (PostgreSQL), and
    // fewer statements to step on SQLite.
    let mut written = 0u64;
    for (k, chunk) in prices.chunks(SEATS_PER_INSERT).enumerate() {
        let first = (k * SEATS_PER_INSERT) as i64 + 1;
        let values: Vec<(i64, Points)> = chunk
            .iter()
            .enumerate()
            .map(|(j, price)| (first + j as i64, *price))
            .collect();
        let mut args: Vec<&dyn ToParam> = Vec::with_capacity(1 + 2 * values.len());
        args.push(&id);
        for (number, price) in &values {
            args.push(number);
            args.push(price);
        }
        c.execute(&insert_seats_sql(values.len()), &args)?;
        let before = written;
        written += values.len() as u64;
        for _ in before / 1024..written / 1024 {
            progress(1024);
        }
    }
    progress(u64::from(s.seats) % 1024);
    Ok(id)
}

/// Seats one `INSERT` writes at most (2 parameters each, and the showtime's).
const SEATS_PER_INSERT: usize = 200;

/// `INSERT INTO seats … VALUES (?1, ?2, ?3), (?1, ?4, ?5), …` for `n` seats of showtime `?1`.
fn insert_seats_sql(n: usize) -> String {
    let mut sql = String::from("INSERT INTO seats (showtime_id, number, price) VALUES ");
    for j in 0..n {
        if j > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(?1, ?{}, ?{})", 2 + 2 * j, 3 + 2 * j));
    }
    sql
}

/// Loads a whole catalog (inside one transaction: the caller's).
pub(crate) fn seed(
    c: &dyn Tx,
    now: Now,
    cat: &CatalogFile,
    progress: &mut dyn FnMut(u64),
) -> Result<SeedReport> {
    let mut report = SeedReport::default();
    for (i, concert) in cat.concerts.iter().enumerate() {
        let id = add_concert(c, &concert.title, &concert.venue)
            .map_err(|e| in_item(e, &format!("concert #{}", i + 1)))?;
        report.concerts += 1;
        for (j, s) in concert.showtimes.iter().enumerate() {
            add_showtime(c, now, id, s, progress)
                .map_err(|e| in_item(e, &format!("concert #{} showtime #{}", i + 1, j + 1)))?;
            report.showtimes += 1;
            report.seats += u64::from(s.seats);
        }
    }
    Ok(report)
}

fn concert_exists(c: &dyn Tx, id: ConcertId) -> Result<bool> {
    Ok(
        c.row("SELECT 1 FROM concerts WHERE id = ?1", params![id], |_| {
            Ok(())
        })?
        .is_some(),
    )
}

/// Whether the catalog has no concert at all.
pub(crate) fn is_empty(c: &dyn Tx) -> Result<bool> {
    Ok(
        c.row("SELECT 1 FROM concerts LIMIT 1", params![], |_| Ok(()))?
            .is_none(),
    )
}

pub(crate) fn list_concerts(c: &dyn Tx) -> Result<Vec<Concert>> {
    c.rows(
        "SELECT id, title, venue FROM concerts ORDER BY id",
        params![],
        |r| {
            Ok(Concert {
                id: r.get(0)?,
                title: r.get(1)?,
                venue: r.get(2)?,
            })
        },
    )
}

/// Which showtimes of a concert to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    /// Those not yet started nor called off (what users may book).
    Bookable,
    /// All of them, past ones too (for operators).
    All,
}

pub(crate) fn list_showtimes(
    c: &dyn Tx,
    now: Now,
    concert: ConcertId,
    which: Which,
) -> Result<Vec<Showtime>> {
    if !concert_exists(c, concert)? {
        return Err(Error::NotFound(Entity::Concert));
    }
    let (from, called_off) = match which {
        Which::Bookable => (now.ms, 0i64),
        Which::All => (i64::MIN, 1i64),
    };
    c.rows(
        concat!(
            "SELECT s.id, s.concert_id, s.starts_at, s.total_seats,
                s.total_seats - ",
            crate::seatmap::sold_of!(),
            " - (SELECT COUNT(*) FROM seats h
                    WHERE h.showtime_id = s.id AND h.held_until > ?2),
                s.sale_opens_at
         FROM showtimes s
         WHERE s.concert_id = ?1 AND s.starts_at > ?3 AND (s.cancelled_at IS NULL OR ?4 = 1)
         ORDER BY s.starts_at, s.id"
        ),
        params![concert, now.ms, from, called_off],
        |r| {
            Ok(Showtime {
                id: r.get(0)?,
                concert_id: r.get(1)?,
                starts_at: from_millis(r.get(2)?),
                total_seats: r.get(3)?,
                available_seats: r.get(4)?,
                sale_opens_at: r.get::<Option<i64>>(5)?.map(from_millis),
            })
        },
    )
}

/// The concert a showtime belongs to; `not_found` for an unknown showtime.
pub(crate) fn concert_of(c: &dyn Tx, showtime: ShowtimeId) -> Result<ConcertId> {
    c.row(
        "SELECT concert_id FROM showtimes WHERE id = ?1",
        params![showtime],
        |r| r.get(0),
    )?
    .ok_or(Error::NotFound(Entity::Showtime))
}

pub(crate) fn list_seats(
    c: &dyn Tx,
    now: Now,
    concert: ConcertId,
    showtime: ShowtimeId,
) -> Result<Vec<Seat>> {
    match concert_of(c, showtime) {
        Ok(of) if of == concert => {}
        Ok(_) | Err(Error::NotFound(_)) => return Err(not_of_concert(c, concert)?),
        Err(e) => return Err(e),
    }
    seats_where(c, now, "showtime_id = ?1", params![showtime, now.ms])
}

/// The `not_found` for a showtime that is not `concert`'s: of the concert when it does not
/// exist either, else of the showtime.
pub(crate) fn not_of_concert(c: &dyn Tx, concert: ConcertId) -> Result<Error> {
    Ok(if concert_exists(c, concert)? {
        Error::NotFound(Entity::Showtime)
    } else {
        Error::NotFound(Entity::Concert)
    })
}

/// The seats matching `condition` (SQL over `seats`; `?2` is now, and must be the second
/// parameter), by number, with their status now: `sold`, else `held` while `held_until` is after
/// now, else `available` — the one place this rule is written.
pub(crate) fn seats_where(
    c: &dyn Tx,
    _now: Now,
    condition: &str,
    params: &[&dyn crate::db::sql::ToParam],
) -> Result<Vec<Seat>> {
    c.rows(
        &format!(
            "SELECT id, number, price,
                    CASE WHEN sold = 1 THEN 'sold' WHEN held_until > ?2 THEN 'held' ELSE 'available' END
             FROM seats WHERE {condition} ORDER BY number"
        ),
        params,
        |r| {
            Ok(Seat {
                id: r.get(0)?,
                number: r.get(1)?,
                price: r.get(2)?,
                status: r.get(3)?,
            })
        },
    )
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
        let r = |from, to, price| PriceRange {
            from,
            to,
            price: Points::new(price),
        };
        let ok = Pricing::Sections(vec![r(1, 2, 10), r(3, 4, 5)]);
        assert_eq!(
            ok.prices(4).unwrap(),
            [10, 10, 5, 5].map(Points::new).to_vec()
        );
        let gap = Pricing::Sections(vec![r(1, 2, 10)]);
        assert!(gap.prices(4).unwrap_err().to_string().contains("seat 3"));
        let overlap = Pricing::Sections(vec![r(1, 3, 10), r(3, 4, 5)]);
        assert!(overlap.prices(4).is_err());
        let outside = Pricing::Sections(vec![r(1, 5, 10)]);
        assert!(outside.prices(4).is_err());
        assert_eq!(
            Pricing::Flat(Points::ZERO).prices(1).unwrap_err().code(),
            "invalid_amount"
        );
    }

    /// Found by the `catalog` fuzz target (fuzz/corpus/catalog/seed-seats-max-u32): a catalog
    /// file with `"seats": 4294967295` made `prices` allocate 32 GiB before checking anything.
    #[test]
    fn prices_refuse_a_seat_count_out_of_range_before_allocating() {
        let flat = Pricing::Flat(Points::new(1));
        for seats in [0, MAX_SEATS + 1, u32::MAX] {
            assert_eq!(
                flat.prices(seats).unwrap_err().code(),
                "invalid_request",
                "{seats}"
            );
        }
        let all = Pricing::Sections(vec![PriceRange {
            from: 1,
            to: u32::MAX,
            price: Points::new(5),
        }]);
        assert_eq!(all.prices(u32::MAX).unwrap_err().code(), "invalid_request");
        assert_eq!(flat.prices(MAX_SEATS).unwrap().len(), MAX_SEATS as usize);
        let file: CatalogFile =
            serde_json::from_str(include_str!("../fuzz/corpus/catalog/seed-seats-max-u32"))
                .unwrap();
        let s = &file.concerts[0].showtimes[0];
        assert_eq!(
            s.price.prices(s.seats).unwrap_err().code(),
            "invalid_request"
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
