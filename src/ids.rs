//! Domain identifiers, parsed and validated once at the edge ("parse, don't validate").

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A user: a UUID that is also the user's bearer secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub uuid::Uuid);

impl UserId {
    /// A new random (v4) user id.
    pub fn new_random() -> Self {
        UserId(uuid::Uuid::new_v4())
    }

    /// Parses a UUID string (any standard form); `invalid_request` otherwise.
    pub fn parse(s: &str) -> Result<Self> {
        uuid::Uuid::parse_str(s.trim())
            .map(UserId)
            .map_err(|_| Error::InvalidRequest(format!("user_id {s:?} is not a UUID")))
    }

    /// The hyphenated lower-case form, as stored and shown.
    pub fn as_string(&self) -> String {
        self.0.hyphenated().to_string()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for UserId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        UserId::parse(s)
    }
}

impl rusqlite::ToSql for UserId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.as_string()))
    }
}

impl rusqlite::types::FromSql for UserId {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        uuid::Uuid::parse_str(s)
            .map(UserId)
            .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// Parses a positive integer id; `invalid_request` otherwise.
            pub fn parse(s: &str) -> Result<Self> {
                match s.trim().parse::<i64>() {
                    Ok(n) if n > 0 => Ok($name(n)),
                    _ => Err(Error::InvalidRequest(format!(
                        "{} {s:?} is not a positive integer", $what
                    ))),
                }
            }

            /// Checks that an id taken from JSON is positive; `invalid_request` otherwise.
            pub fn new(n: i64) -> Result<Self> {
                if n > 0 {
                    Ok($name(n))
                } else {
                    Err(Error::InvalidRequest(format!("{} must be a positive integer", $what)))
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $name::parse(s)
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.0))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                v.as_i64().map($name)
            }
        }
    };
}

int_id!(
    /// A concert.
    ConcertId,
    "concert_id"
);
int_id!(
    /// A showtime (one date of a concert).
    ShowtimeId,
    "showtime_id"
);
int_id!(
    /// A seat of a showtime.
    SeatId,
    "seat_id"
);
int_id!(
    /// A ticket (a user's claim on one seat).
    TicketId,
    "ticket_id"
);
int_id!(
    /// A payment.
    PaymentId,
    "payment_id"
);
int_id!(
    /// A queue entry (also its place in line).
    EntryId,
    "entry_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_positive_integers() {
        assert_eq!(SeatId::parse("42").unwrap(), SeatId(42));
        for bad in ["0", "-1", "x", "", "1.5", "99999999999999999999"] {
            let e = SeatId::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_request", "{bad}");
        }
        assert!(TicketId::new(0).is_err());
    }

    #[test]
    fn user_ids_are_uuids() {
        let u = UserId::new_random();
        assert_eq!(UserId::parse(&u.to_string()).unwrap(), u);
        assert_eq!(
            UserId::parse("not-a-uuid").unwrap_err().code(),
            "invalid_request"
        );
    }
}
