//! What a request carries, parsed once at the edge: the bearer token, `?user_id=`, the
//! `Idempotency-Key`, and JSON bodies that deserialize straight into the library's types
//! (`invalid_json` when the bytes are not JSON, `invalid_request` when the JSON has the wrong
//! shape — a missing, ill-typed or unknown field, a bad id).

use super::reply::Failure;
use crate::{Error, IdempotencyKey, Identity, Points, SeatId, ShowtimeId, TicketId, UserId};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The parts of a request the handlers read.
#[derive(Debug, Default)]
pub struct Incoming<'a> {
    /// The query string (after `?`), or empty.
    pub query: &'a str,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<&'a str>,
    /// The `If-None-Match` header.
    pub if_none_match: Option<&'a str>,
    /// The client's address (the peer's, or the trusted `X-Forwarded-For` entry).
    pub client: Option<std::net::IpAddr>,
    /// The body (at most the size limit).
    pub body: Vec<u8>,
}

impl Incoming<'_> {
    /// The bearer token of `Authorization: Bearer <jwt>`; `unauthorized` without one.
    pub fn bearer(&self) -> Result<&str, Failure> {
        let header = self.authorization.ok_or_else(|| {
            Error::Unauthorized("missing token: send Authorization: Bearer <token>".into())
        })?;
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Unauthorized("the Authorization header must be: Bearer <token>".into())
            })?;
        Ok(token)
    }

    /// The `Idempotency-Key` header, checked.
    pub fn idempotency_key(&self) -> Result<Option<IdempotencyKey>, Failure> {
        Ok(self
            .idempotency_key
            .map(IdempotencyKey::parse)
            .transpose()?)
    }

    /// The value of query parameter `name`, decoded (the first one, if given twice).
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Checks every `user_id` in the query against the token's user.
    pub fn check_query_user(&self, who: &Identity) -> Result<(), Failure> {
        for (key, value) in form_urlencoded::parse(self.query.as_bytes()) {
            if key == "user_id" {
                same_user(Some(UserId::parse(&value)?), who)?;
            }
        }
        Ok(())
    }

    /// The body as `T` (a JSON object); see the module docs for which error is which.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).map_err(|e| {
            Failure::InvalidJson(format!("the request body is not valid JSON: {e}"))
        })?;
        if !value.is_object() {
            // serde would read a struct from an array too; a body is an object.
            return Err(
                Error::InvalidRequest("the request body must be a JSON object".into()).into(),
            );
        }
        serde_json::from_value(value)
            .map_err(|e| Error::InvalidRequest(format!("invalid request body: {e}")).into())
    }

    /// Like [`Incoming::json`], but an empty body stands for `{}`.
    pub fn json_or_empty<T: DeserializeOwned + Default>(&self) -> Result<T, Failure> {
        if self.body.is_empty() {
            Ok(T::default())
        } else {
            self.json()
        }
    }
}

/// A `user_id` a request carries must be the token's user: `forbidden` if it is someone else.
pub fn same_user(claimed: Option<UserId>, who: &Identity) -> Result<(), Failure> {
    match claimed {
        Some(u) if u != who.user_id() => Err(Failure::Forbidden),
        _ => Ok(()),
    }
}

/// `POST /token`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// An existing user; omitted (or null) for a new one.
    #[serde(default)]
    pub user_id: Option<UserId>,
}

/// `POST /tickets`: one seat (`seat_id`) or several (`seat_ids`), not both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// The showtime.
    pub showtime_id: ShowtimeId,
    /// The seat (the single form).
    #[serde(default)]
    pub seat_id: Option<SeatId>,
    /// The seats (the list form).
    #[serde(default)]
    pub seat_ids: Option<Vec<SeatId>>,
    /// Must be the token's user, if given.
    #[serde(default)]
    pub user_id: Option<UserId>,
}

/// One id, or a list of them: which form a body used.
pub enum OneOrMany<T> {
    /// `"seat_id": 5`
    One(T),
    /// `"seat_ids": [5, 6]`
    Many(Vec<T>),
}

/// The form a body used: exactly one of `one` and `many` must be given.
fn one_or_many<T>(
    one: Option<T>,
    many: Option<Vec<T>>,
    name: &str,
) -> Result<OneOrMany<T>, Failure> {
    match (one, many) {
        (Some(id), None) => Ok(OneOrMany::One(id)),
        (None, Some(ids)) => Ok(OneOrMany::Many(ids)),
        (Some(_), Some(_)) => Err(Error::InvalidRequest(format!(
            "give either {name}_id or {name}_ids, not both"
        ))
        .into()),
        (None, None) => Err(Error::InvalidRequest(format!(
            "missing field `{name}_id` (or `{name}_ids`)"
        ))
        .into()),
    }
}

impl HoldBody {
    /// The seat or seats asked for.
    pub fn seats(self) -> Result<OneOrMany<SeatId>, Failure> {
        one_or_many(self.seat_id, self.seat_ids, "seat")
    }
}

impl PayBody {
    /// The ticket or tickets paid for.
    pub fn tickets(self) -> Result<OneOrMany<TicketId>, Failure> {
        one_or_many(self.ticket_id, self.ticket_ids, "ticket")
    }
}

/// `POST /points`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeBody {
    /// Points to add.
    pub amount: Points,
    /// Must be the token's user, if given.
    #[serde(default)]
    pub user_id: Option<UserId>,
}

/// `POST /payments`: one ticket (`ticket_id`) or several (`ticket_ids`), not both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayBody {
    /// The held ticket to pay for (the single form).
    #[serde(default)]
    pub ticket_id: Option<TicketId>,
    /// The held tickets to pay for (the list form).
    #[serde(default)]
    pub ticket_ids: Option<Vec<TicketId>>,
    /// Must be the token's user, if given.
    #[serde(default)]
    pub user_id: Option<UserId>,
}

/// A body that may name its user (checked against the token).
pub trait Claimed {
    /// The `user_id` the body carries, if any.
    fn claimed_user(&self) -> Option<UserId>;
}

macro_rules! claimed {
    ($($t:ty),*) => {$(
        impl Claimed for $t {
            fn claimed_user(&self) -> Option<UserId> {
                self.user_id
            }
        }
    )*};
}
claimed!(HoldBody, ChargeBody, PayBody);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EntryId;

    fn with_body(b: &str) -> Incoming<'static> {
        Incoming {
            body: b.as_bytes().to_vec(),
            ..Incoming::default()
        }
    }

    #[test]
    fn bodies_are_invalid_json_or_invalid_request() {
        let code = |b: &str| with_body(b).json::<ChargeBody>().unwrap_err().code();
        assert_eq!(code("{"), "invalid_json");
        assert_eq!(code(""), "invalid_json");
        assert_eq!(code("\u{0}"), "invalid_json");
        assert_eq!(code("[]"), "invalid_request");
        assert_eq!(code("[5]"), "invalid_request");
        assert_eq!(code(r#"{"amount":"5"}"#), "invalid_request");
        assert_eq!(code(r#"{"amount":1.5}"#), "invalid_request");
        assert_eq!(
            code(r#"{"amount":99999999999999999999}"#),
            "invalid_request"
        );
        assert_eq!(code(r#"{}"#), "invalid_request");
        assert_eq!(code(r#"{"amount":5,"extra":1}"#), "invalid_request");
        assert_eq!(code(r#"{"amount":5,"user_id":"nope"}"#), "invalid_request");
        assert_eq!(
            with_body(r#"{"amount":5}"#)
                .json::<ChargeBody>()
                .unwrap()
                .amount,
            Points::new(5)
        );
        let hold = |b: &str| with_body(b).json::<HoldBody>().map_err(|e| e.code());
        assert_eq!(
            hold(r#"{"showtime_id":0,"seat_id":1}"#).unwrap_err(),
            "invalid_request"
        );
        assert_eq!(
            hold(r#"{"showtime_id":1,"seat_id":-4}"#).unwrap_err(),
            "invalid_request"
        );
        assert_eq!(
            hold(r#"{"showtime_id":1,"seat_id":4}"#)
                .unwrap()
                .seat_id
                .map(SeatId::get),
            Some(4)
        );
        assert_eq!(
            hold(r#"{"showtime_id":1,"seat_ids":[4,0]}"#).unwrap_err(),
            "invalid_request"
        );
        let form = |b: &str| {
            with_body(b)
                .json::<HoldBody>()
                .unwrap()
                .seats()
                .map(|f| match f {
                    OneOrMany::One(_) => 1,
                    OneOrMany::Many(v) => v.len() + 10,
                })
                .map_err(|e| e.code())
        };
        assert_eq!(form(r#"{"showtime_id":1,"seat_id":4}"#), Ok(1));
        assert_eq!(form(r#"{"showtime_id":1,"seat_ids":[4,5]}"#), Ok(12));
        assert_eq!(form(r#"{"showtime_id":1,"seat_ids":[]}"#), Ok(10));
        assert_eq!(form(r#"{"showtime_id":1}"#), Err("invalid_request"));
        assert_eq!(
            form(r#"{"showtime_id":1,"seat_id":4,"seat_ids":[4]}"#),
            Err("invalid_request")
        );
        assert!(with_body("")
            .json_or_empty::<TokenBody>()
            .unwrap()
            .user_id
            .is_none());
        assert_eq!(
            with_body(" \r\n")
                .json_or_empty::<TokenBody>()
                .unwrap_err()
                .code(),
            "invalid_json"
        );
        assert!(with_body(r#"{"user_id":null}"#)
            .json_or_empty::<TokenBody>()
            .unwrap()
            .user_id
            .is_none());
    }

    #[test]
    fn bearer_tokens() {
        fn with(h: Option<&str>) -> Incoming<'_> {
            Incoming {
                authorization: h,
                ..Incoming::default()
            }
        }
        assert_eq!(with(Some("Bearer abc")).bearer().unwrap(), "abc");
        assert_eq!(with(Some("bearer  abc ")).bearer().unwrap(), "abc");
        for bad in [
            None,
            Some("abc"),
            Some("Basic abc"),
            Some("Bearer "),
            Some("Bearer"),
        ] {
            assert_eq!(
                with(bad).bearer().unwrap_err().code(),
                "unauthorized",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn query_user_must_be_the_tokens() {
        let who = Identity::new(UserId::new_random(), EntryId::new(1).unwrap());
        fn q(s: &str) -> Incoming<'_> {
            Incoming {
                query: s,
                ..Incoming::default()
            }
        }
        assert!(q(&format!("user_id={}", who.user_id()))
            .check_query_user(&who)
            .is_ok());
        let encoded = who.user_id().to_string().replace('-', "%2D");
        assert!(q(&format!("x=1&user_id={encoded}"))
            .check_query_user(&who)
            .is_ok());
        assert!(q("x=1").check_query_user(&who).is_ok());
        let other = UserId::new_random();
        assert_eq!(
            q(&format!("user_id={other}"))
                .check_query_user(&who)
                .unwrap_err()
                .code(),
            "forbidden"
        );
        assert_eq!(
            q("user_id=nope").check_query_user(&who).unwrap_err().code(),
            "invalid_request"
        );
    }
}
