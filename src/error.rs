//! The one error type of the library. Each variant is one error code of the contract
//! (`docs/API.md` §3); [`Error::code`] gives that code. Which HTTP status a code gets is the HTTP
//! layer's business (`src/http/reply.rs`); the library knows nothing of HTTP.

use crate::ids::{SeatId, ShowtimeId, TicketId};
use crate::money::Points;
use std::fmt;

/// Everything that can go wrong in `booking`, one variant per contract error code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `invalid_request`: a missing or ill-typed field, a bad id, a bad time.
    #[error("{0}")]
    InvalidRequest(String),
    /// `invalid_amount`: an amount outside the allowed range.
    #[error("{0}")]
    InvalidAmount(String),
    /// `unauthorized`: the token is missing, malformed, badly signed, not HS256 or past its lifetime.
    #[error("{0}")]
    Unauthorized(String),
    /// `insufficient_points`: the wallet holds less than the price.
    #[error("insufficient points: balance {balance}, price {price}")]
    InsufficientPoints {
        /// The wallet's balance.
        balance: Points,
        /// What the payment needs.
        price: Points,
    },
    /// `queue_not_active`: the token's queue entry is waiting or expired.
    #[error("your queue entry is {0}, not active")]
    QueueNotActive(QueueState),
    /// `not_found`: no such thing (or it belongs to another user).
    #[error("{0} not found")]
    NotFound(Entity),
    /// `seat_unavailable`: the seat is held by someone else or sold.
    #[error("seat {0} is not available")]
    SeatUnavailable(SeatId),
    /// `hold_limit_reached`: the user already holds the most seats allowed for this showtime.
    #[error("you already hold {0} seats for this showtime, the most allowed")]
    HoldLimitReached(u32),
    /// `hold_expired`: the ticket's hold lapsed before payment.
    #[error("the hold on ticket {0} has expired")]
    HoldExpired(TicketId),
    /// `already_paid`: the ticket is paid already.
    #[error("ticket {0} is already paid")]
    AlreadyPaid(TicketId),
    /// `showtime_closed`: the showtime has started; nothing can be held for it.
    #[error("showtime {0} has already started")]
    ShowtimeClosed(ShowtimeId),
    /// `balance_limit`: the charge would take the wallet past the maximum balance.
    #[error("a wallet may hold at most {max} points (balance {balance})")]
    BalanceLimit {
        /// The wallet's balance.
        balance: Points,
        /// The configured maximum.
        max: Points,
    },
    /// `idempotency_conflict`: a request with this key is still being processed. Reserved: every
    /// keyed operation checks and records its key in the same write transaction, so a duplicate
    /// always sees the first one finished.
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyConflict,
    /// `idempotency_key_reused`: the key was first used for a different request.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// `busy`: the database stayed locked past the busy timeout; safe to retry.
    #[error("the database is busy; retry")]
    Busy,
    /// `internal`: a bug or an I/O failure. The message shown to clients never carries internals.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// What was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entity {
    /// A concert.
    Concert,
    /// A showtime (or one that is not of the concert named).
    Showtime,
    /// A seat (or one that is not of the showtime named).
    Seat,
    /// A ticket (or another user's).
    Ticket,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Concert => "concert",
            Entity::Showtime => "showtime",
            Entity::Seat => "seat",
            Entity::Ticket => "ticket",
        })
    }
}

/// The state of a queue entry, as told in `queue_not_active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueState {
    /// Still in line.
    Waiting,
    /// Past its time.
    Expired,
}

impl fmt::Display for QueueState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueState::Waiting => "waiting",
            QueueState::Expired => "expired",
        })
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The contract's snake_case error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "invalid_request",
            Error::InvalidAmount(_) => "invalid_amount",
            Error::Unauthorized(_) => "unauthorized",
            Error::InsufficientPoints { .. } => "insufficient_points",
            Error::QueueNotActive(_) => "queue_not_active",
            Error::NotFound(_) => "not_found",
            Error::SeatUnavailable(_) => "seat_unavailable",
            Error::HoldLimitReached(_) => "hold_limit_reached",
            Error::HoldExpired(_) => "hold_expired",
            Error::AlreadyPaid(_) => "already_paid",
            Error::ShowtimeClosed(_) => "showtime_closed",
            Error::BalanceLimit { .. } => "balance_limit",
            Error::IdempotencyConflict => "idempotency_conflict",
            Error::IdempotencyKeyReused => "idempotency_key_reused",
            Error::Busy => "busy",
            Error::Internal(_) => "internal",
        }
    }

    /// The message safe to show a client: everything but `internal` tells its own text.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        }
    }

    /// Wraps any error as `internal`.
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Error {
        Error::Internal(e.into())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => Error::Busy,
            _ => Error::internal(e),
        }
    }
}

impl From<r2d2::Error> for Error {
    fn from(e: r2d2::Error) -> Self {
        Error::internal(e)
    }
}

impl From<rusqlite_migration::Error> for Error {
    fn from(e: rusqlite_migration::Error) -> Self {
        match e {
            rusqlite_migration::Error::RusqliteError { err, .. } => err.into(),
            other => Error::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause_from_clients() {
        let e = Error::internal(std::io::Error::other("/secret/path exploded"));
        assert_eq!(e.code(), "internal");
        assert!(!e.public_message().contains("secret"));
    }

    #[test]
    fn busy_sqlite_errors_map_to_busy() {
        let e: Error = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        )
        .into();
        assert_eq!(e.code(), "busy");
    }

    #[test]
    fn not_found_names_what() {
        assert_eq!(
            Error::NotFound(Entity::Ticket).to_string(),
            "ticket not found"
        );
    }
}
