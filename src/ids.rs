//! Identifiers, parsed and validated once at the edge ("parse, don't validate"): a value of one
//! of these types is valid by construction, whether it came from a path, a JSON body (serde
//! deserializes through the same check), a command line or the database.

use crate::db::sql::{FromCol, Param, Row, ToParam};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// A user: a UUID that is also the user's bearer secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct UserId(uuid::Uuid);

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

    /// The UUID.
    pub fn uuid(&self) -> uuid::Uuid {
        self.0
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

impl From<UserId> for String {
    fn from(u: UserId) -> String {
        u.to_string()
    }
}

impl TryFrom<String> for UserId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        UserId::parse(&s)
    }
}

impl ToParam for UserId {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Cow::Owned(self.to_string()))
    }
}

impl FromCol for UserId {
    fn from_col(row: &dyn Row, i: usize) -> Result<Self> {
        let s: String = row.get(i)?;
        uuid::Uuid::parse_str(&s)
            .map(UserId)
            .map_err(|_| Error::internal(format!("stored user id {s:?} is not a UUID")))
    }
}

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(into = "i64", try_from = "i64")]
        pub struct $name(i64);

        impl $name {
            /// Checks that an id is a positive integer; `invalid_request` otherwise.
            pub fn new(n: i64) -> Result<Self> {
                if n > 0 {
                    Ok($name(n))
                } else {
                    Err(Error::InvalidRequest(format!("{} must be a positive integer", $what)))
                }
            }

            /// Parses a positive integer id; `invalid_request` otherwise.
            pub fn parse(s: &str) -> Result<Self> {
                match s.trim().parse::<i64>() {
                    Ok(n) if n > 0 => Ok($name(n)),
                    _ => Err(Error::InvalidRequest(format!(
                        "{} {s:?} is not a positive integer", $what
                    ))),
                }
            }

            /// The number.
            pub fn get(self) -> i64 {
                self.0
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

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = Error;
            fn try_from(n: i64) -> Result<Self> {
                $name::new(n)
            }
        }

        impl ToParam for $name {
            fn to_param(&self) -> Param<'_> {
                Param::Int(self.0)
            }
        }

        impl FromCol for $name {
            fn from_col(row: &dyn Row, i: usize) -> Result<Self> {
                let n: i64 = row.get(i)?;
                $name::new(n).map_err(|_| Error::internal(format!("stored {} {n} is not positive", $what)))
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
int_id!(
    /// A row of the points ledger.
    LedgerId,
    "ledger_id"
);

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters, scoped to its user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The longest key accepted.
    pub const MAX_LEN: usize = 255;

    /// Checks a key; `invalid_request` unless it is 1..=255 visible ASCII characters.
    pub fn parse(key: &str) -> Result<Self> {
        if key.is_empty()
            || key.len() > Self::MAX_LEN
            || !key.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            return Err(Error::InvalidRequest(format!(
                "Idempotency-Key must be 1 to {} visible ASCII characters",
                Self::MAX_LEN
            )));
        }
        Ok(IdempotencyKey(key.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IdempotencyKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        IdempotencyKey::parse(s)
    }
}

impl ToParam for IdempotencyKey {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_positive_integers() {
        assert_eq!(SeatId::parse("42").unwrap().get(), 42);
        for bad in ["0", "-1", "x", "", "1.5", "99999999999999999999"] {
            let e = SeatId::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_request", "{bad}");
        }
        assert!(TicketId::new(0).is_err());
    }

    #[test]
    fn ids_deserialize_through_the_same_check() {
        assert_eq!(serde_json::from_str::<SeatId>("7").unwrap().get(), 7);
        for bad in ["0", "-3", "1.5", "\"7\"", "null"] {
            assert!(serde_json::from_str::<SeatId>(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::to_string(&SeatId::new(7).unwrap()).unwrap(),
            "7"
        );
        let u = UserId::new_random();
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, format!("\"{u}\""));
        assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), u);
        assert!(serde_json::from_str::<UserId>("\"nope\"").is_err());
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

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse("order-42").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
    }
}
