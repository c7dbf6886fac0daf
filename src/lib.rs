//! `booking`: a concert-booking engine over embedded SQLite — a fair waiting room, seat holds
//! that lapse on time, a points wallet with an append-only ledger, and all-or-nothing payments.
//!
//! ```no_run
//! use booking::{Booking, Config, Guard};
//! # fn main() -> booking::Result<()> {
//! let b = Booking::open("booking.db", Config::default())?;
//! let entered = b.enter_queue(None)?;                 // a new user joins the waiting room
//! let who = b.authorize(&entered.token, Guard::Active)?; // admitted at once when there is room
//! let concert = &b.list_concerts()?[0];
//! let showtime = &b.list_showtimes(concert.id)?[0];
//! let seat = &b.list_seats(concert.id, showtime.id)?[0];
//! let ticket = b.hold(who.user_id, showtime.id, seat.id)?;   // held for 5 minutes
//! b.charge(who.user_id, ticket.price, None)?;
//! let payment = b.pay(who.user_id, ticket.id, None)?;      // the seat is the user's for good
//! # let _ = payment; Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`Booking`] (this file): the handle — one database, one config, one clock.
//! - `db`: opening, pragmas, migrations (`schema.sql`), the read pool and the one write path.
//! - [`queue`]: waiting-room entries, O(1) positions, lazy admission, the two guards.
//! - `token`: HS256 JWTs pointing at queue entries.
//! - [`catalog`]: concerts, showtimes, seats, seeding and the demo catalog.
//! - [`tickets`]: holds and the user's tickets.
//! - [`wallet`]: balances and the points ledger.
//! - [`payments`]: paying for a held ticket.
//! - [`idempotency`]: Idempotency-Key records.
//! - [`maintenance`]: sweep, verify, stats.
//! - [`error`], [`clock`], [`config`], [`ids`]: the error enum, time, policy, identifiers.
//! - `http` (feature `server`): the only module that knows HTTP and JSON.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod catalog;
pub mod clock;
pub mod config;
mod db;
pub mod error;
#[cfg(feature = "server")]
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod maintenance;
pub mod payments;
pub mod queue;
pub mod tickets;
mod token;
pub mod wallet;

pub use catalog::{
    CatalogFile, Concert, NewConcert, NewShowtime, PriceRange, Pricing, Seat, SeatStatus,
    SeedReport, Showtime,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{parse_duration, Config, Durability, GroupCommit};
pub use db::batch::{BatchStats, BATCH_BUCKETS};
pub use db::SCHEMA_VERSION;
pub use error::{Error, Result};
pub use ids::{ConcertId, EntryId, PaymentId, SeatId, ShowtimeId, TicketId, UserId};
pub use maintenance::{Stats, SweepReport, VerifyReport, Violation};
pub use payments::Payment;
pub use queue::{Entered, EntryStatus, Guard, QueueCounts, QueueStatus};
pub use tickets::{Ticket, TicketStatus};
pub use token::Principal;
pub use wallet::{Balance, LedgerKind, PointTransaction};

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The handle: a database file, its policy and its clock. Cheap to share across threads
/// (`Arc<Booking>`); several handles — in one process or many — may open the same file.
pub struct Booking {
    db: db::Db,
    cfg: Arc<Config>,
    signer: token::Signer,
    clock: Arc<dyn Clock>,
    temp_dir: Option<PathBuf>,
}

impl Booking {
    /// Opens (creating and migrating if needed) the database at `path` with the system clock.
    pub fn open(path: impl AsRef<Path>, cfg: Config) -> Result<Booking> {
        Booking::open_with_clock(path, cfg, Arc::new(SystemClock))
    }

    /// Opens the database at `path` with the given clock.
    pub fn open_with_clock(
        path: impl AsRef<Path>,
        cfg: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Booking> {
        let db = db::Db::open(path.as_ref(), &cfg, clock.clone())?;
        let secret = match &cfg.jwt_secret {
            Some(s) if !s.is_empty() => s.clone(),
            Some(_) => return Err(Error::InvalidRequest("the JWT secret is empty".into())),
            None => db.write(|c, _| {
                db::meta_get_or_init(c, "jwt_secret", || rand::random::<[u8; 32]>().to_vec())
            })?,
        };
        Ok(Booking {
            db,
            signer: token::Signer::new(&secret),
            cfg: Arc::new(cfg),
            clock,
            temp_dir: None,
        })
    }

    /// Opens a fresh database in a new temporary directory, removed when the handle drops.
    /// Meant for tests and examples.
    pub fn open_temporary(cfg: Config, clock: Arc<dyn Clock>) -> Result<Booking> {
        let dir = std::env::temp_dir().join(format!("booking-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(Error::internal)?;
        let mut b = Booking::open_with_clock(dir.join("booking.db"), cfg, clock)?;
        b.temp_dir = Some(dir);
        Ok(b)
    }

    /// The policy in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The clock's current time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Batch-size counts of the group-commit writer (`None` when group commit is off).
    pub fn batch_stats(&self) -> Option<&db::batch::BatchStats> {
        self.db.batch_stats()
    }
}

impl Drop for Booking {
    fn drop(&mut self) {
        if let Some(dir) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
