//! What a request carries, parsed once at the edge: the bearer token, `?user_id=`, and JSON
//! bodies (`invalid_json` when the bytes are not JSON, `invalid_request` when the JSON has the
//! wrong shape — a missing, ill-typed or unknown field).

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::Principal;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::borrow::Cow;

/// The parts of a request the handlers read.
#[derive(Debug, Default)]
pub struct Incoming<'a> {
    /// The query string (after `?`), or empty.
    pub query: &'a str,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<&'a str>,
    /// The body (at most the size limit).
    pub body: Vec<u8>,
}

impl Incoming<'_> {
    /// The bearer token of `Authorization: Bearer <jwt>`; `unauthorized` without one.
    pub fn bearer(&self) -> Result<&str> {
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

    /// Checks every `user_id` in the query against the token's user.
    pub fn check_query_user(&self, who: &Principal) -> Result<()> {
        for pair in self.query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key == "user_id" {
                same_user(Some(value), who)?;
            }
        }
        Ok(())
    }

    /// The body as `T` (a JSON object); see the module docs for which error is which.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let value: serde_json::Value = serde_json::from_slice(&self.body)
            .map_err(|e| Error::InvalidJson(format!("the request body is not valid JSON: {e}")))?;
        if !value.is_object() {
            // serde would read a struct from an array too; a body is an object.
            return Err(Error::InvalidRequest(
                "the request body must be a JSON object".into(),
            ));
        }
        serde_json::from_value(value)
            .map_err(|e| Error::InvalidRequest(format!("invalid request body: {e}")))
    }

    /// Like [`Incoming::json`], but an empty body stands for `{}`.
    pub fn json_or_empty<T: DeserializeOwned + Default>(&self) -> Result<T> {
        if self.body.is_empty() {
            Ok(T::default())
        } else {
            self.json()
        }
    }
}

/// A `user_id` a request carries must be the token's user: `invalid_request` if it is not a
/// UUID, `forbidden` if it is someone else.
pub fn same_user(claimed: Option<&str>, who: &Principal) -> Result<()> {
    match claimed {
        None => Ok(()),
        Some(s) if UserId::parse(&percent_decode(s, true))? == who.user_id => Ok(()),
        Some(_) => Err(Error::Forbidden("user_id is not the token's user".into())),
    }
}

/// Decodes `%XX` escapes (and `+` as a space in a query, when `plus_is_space`).
pub fn percent_decode(s: &str, plus_is_space: bool) -> Cow<'_, str> {
    if !s.contains('%') && (!plus_is_space || !s.contains('+')) {
        return s.into();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|c| hex(*c)),
            b.get(i + 2).and_then(|c| hex(*c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

/// `POST /token`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// An existing user; omitted (or null) for a new one.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// `POST /tickets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// The showtime.
    pub showtime_id: i64,
    /// The seat.
    pub seat_id: i64,
    /// Must be the token's user, if given.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// `POST /points`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeBody {
    /// Points to add.
    pub amount: i64,
    /// Must be the token's user, if given.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// `POST /payments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayBody {
    /// The held ticket to pay for.
    pub ticket_id: i64,
    /// Must be the token's user, if given.
    #[serde(default)]
    pub user_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EntryId;

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
        assert_eq!(
            with_body(r#"{"amount":5}"#)
                .json::<ChargeBody>()
                .unwrap()
                .amount,
            5
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
        let who = Principal {
            user_id: UserId::new_random(),
            entry_id: EntryId(1),
        };
        fn q(s: &str) -> Incoming<'_> {
            Incoming {
                query: s,
                ..Incoming::default()
            }
        }
        assert!(q(&format!("user_id={}", who.user_id))
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
