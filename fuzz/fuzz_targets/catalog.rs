//! The catalog file of `booking-cli seed --file`: JSON into `CatalogFile`, every showtime's
//! `Pricing::prices`, and (for a catalog of at most 2,000 seats) the whole seed into a database.
//!
//! Holds: nothing panics and nothing allocates without bound; prices that pass are one per seat,
//! each 1..=MAX_PRICE; a refused catalog is `invalid_request` or `invalid_amount` and loads
//! nothing (all or nothing); a catalog that loads adds exactly its concerts. The database is in
//! a fixed temporary directory (`booking-fuzz-catalog`), renewed as it goes: one process at a time.
#![no_main]

use booking::{Booking, CatalogFile, Config, Durability, ManualClock, MAX_PRICE};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, Mutex};

/// A database to seed into, renewed every so many loads so that it stays small.
static DB: Mutex<Option<(Booking, u32)>> = Mutex::new(None);

fn with_db(f: impl FnOnce(&Booking)) {
    let mut db = DB.lock().unwrap_or_else(|p| p.into_inner());
    if db.as_ref().is_none_or(|(_, loads)| *loads >= 500) {
        *db = None; // closes the old one first
        let dir = std::env::temp_dir().join("booking-fuzz-catalog");
        let _ = std::fs::remove_dir_all(&dir); // the last one's, or a previous run's
        std::fs::create_dir_all(&dir).expect("a directory for the database");
        let cfg = Config::default().with_durability(Durability::Normal);
        let b =
            Booking::open_with_clock(dir.join("booking.db"), cfg, Arc::new(ManualClock::fixed()))
                .expect("open");
        *db = Some((b, 0));
    }
    let (b, loads) = db.as_mut().unwrap();
    *loads += 1;
    f(b);
}

fuzz_target!(|data: &[u8]| {
    let Ok(cat) = serde_json::from_slice::<CatalogFile>(data) else {
        return;
    };
    for concert in &cat.concerts {
        for s in &concert.showtimes {
            match s.price.prices(s.seats) {
                Ok(prices) => {
                    assert_eq!(prices.len(), s.seats as usize);
                    assert!(prices.iter().all(|p| p.get() >= 1 && *p <= MAX_PRICE));
                }
                Err(e) => assert!(
                    matches!(e.code(), "invalid_request" | "invalid_amount"),
                    "{e:?}"
                ),
            }
        }
    }
    if cat.total_seats() > 2_000 {
        return;
    }
    with_db(|b| {
        let op = b.operator();
        let before = op.concerts().expect("concerts").len();
        match op.seed(&cat, |_| {}) {
            Ok(report) => {
                assert_eq!(report.concerts as usize, cat.concerts.len());
                assert_eq!(op.concerts().unwrap().len(), before + cat.concerts.len());
            }
            Err(e) => {
                assert!(
                    matches!(e.code(), "invalid_request" | "invalid_amount"),
                    "{e:?}"
                );
                assert_eq!(op.concerts().unwrap().len(), before, "all or nothing");
            }
        }
    });
});
