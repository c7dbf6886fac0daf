//! `booking`: a concert-booking engine over embedded SQLite or PostgreSQL — a fair waiting room,
//! seat holds that lapse on time, a points wallet with an append-only ledger, and all-or-nothing
//! payments. The contract it keeps is `docs/API.md`.
//!
//! ```no_run
//! use booking::{Booking, Config, Points};
//! # fn main() -> booking::Result<()> {
//! let b = Booking::open("booking.db", Config::default())?;
//! let entered = b.enter_queue(None)?;                  // a new user joins the waiting room
//! let me = b.authorize_active(&entered.token)?;         // admitted at once when there is room
//! let concert = &b.concerts(&me)?[0];
//! let showtime = &b.showtimes(&me, concert.id)?[0];
//! let seat = &b.seats(&me, concert.id, showtime.id)?[0];
//! let ticket = b.hold(&me, showtime.id, seat.id)?;     // held for 5 minutes
//! b.charge(&me, ticket.price, None)?;
//! let payment = b.pay(&me, ticket.id, None)?;          // the seat is the user's for good
//! # let _ = (payment, Points::ZERO); Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`Booking`] (`booking.rs`): the facade — the whole public API. Each method picks the path
//!   (read, operator's write, request's write) and calls one domain function.
//! - `auth`: tokens, and the proofs [`Identity`] and [`Active`] the operations take.
//! - `queue`, `catalog`, `tickets`, `wallet`, `payments`, `cancellations`, `reports`,
//!   `idempotency`, `maintenance`: the domain, pure functions over an open transaction; they
//!   never see `Booking`.
//! - `db`: the storage seam (`db::sql::Tx`) and the engines under it, picked by the
//!   [`Location`]: SQLite (pragmas, migrations from `schema.sql`, the read pool, the write path,
//!   group commit, checkpoints) and, with the feature `postgres`, PostgreSQL (a pool, migrations
//!   from `migrations/postgres/`, row locks, retried deadlocks).
//! - `error`, `ids`, `money`, `clock`, `config`: the error enum, identifiers, [`Points`], time,
//!   policy.
//! - [`http`] (feature `server`): the only module that knows HTTP and JSON.
//! - [`client`] (feature `client`): a small blocking client of the HTTP API.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod booking;
mod cancellations;
mod catalog;
#[cfg(feature = "client")]
pub mod client;
mod clock;
mod config;
mod db;
mod error;
#[cfg(feature = "server")]
pub mod http;
mod idempotency;
mod ids;
mod maintenance;
mod money;
mod payments;
mod queue;
mod reports;
mod seatmap;
mod tickets;
mod wallet;

pub use crate::auth::{Active, Identity};
pub use crate::booking::{Booking, Operator};
pub use crate::cancellations::{Cancellation, ShowtimeCancelled};
pub use crate::catalog::{
    demo_catalog, CatalogFile, Concert, NewConcert, NewShowtime, PriceRange, Pricing, Seat,
    SeatStatus, SeedReport, Showtime, MAX_NAME_CHARS, MAX_PRICE, MAX_SEATS,
};
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::config::{parse_duration, Config, Durability, GroupCommit};
pub use crate::db::{BatchStats, Location, SCHEMA_VERSION};
pub use crate::error::{Closed, Entity, Error, QueueState, Result};
pub use crate::ids::{
    ConcertId, EntryId, IdempotencyKey, LedgerId, PaymentId, SeatId, ShowtimeId, TicketId, UserId,
};
pub use crate::maintenance::{Stats, SweepReport, VerifyReport, Violation};
pub use crate::money::Points;
pub use crate::payments::Payment;
pub use crate::queue::{
    Entered, EntryStatus, QueueChange, QueueCounts, QueueSettings, QueueStatus, SettingsSource,
    Source,
};
pub use crate::reports::ShowtimeReport;
pub use crate::seatmap::{SeatChanges, SeatMap, SeatVersion};
pub use crate::tickets::{Ticket, TicketStatus};
pub use crate::wallet::{Balance, LedgerKind, PointTransaction};
