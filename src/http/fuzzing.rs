//! Entry points for the fuzz targets (`fuzz/`): the HTTP layer's parsers of untrusted bytes, run
//! without a server, exactly as a request runs them. Built only with the feature `fuzzing` and
//! hidden from the docs: not part of the API, and absent from production builds.
//!
//! Each function answers what a client would get: `Ok` when the input passes, else the reply's
//! status and its JSON body (`{"error": {"code", "message"}}`), so a target can check that every
//! refusal is a well-formed client error and never `500 internal`.

use super::input::{ChargeBody, HoldBody, Incoming, OneOrMany, PayBody, TokenBody};
use super::reply::{Failure, Reply};
use super::router::{self, Unrouted};
use crate::{Identity, UserId};

/// A refusal: the reply's status and body.
pub type Refusal = (u16, Vec<u8>);

fn refusal(f: impl Into<Failure>) -> Refusal {
    let reply = Reply::from(f.into());
    (reply.status, reply.body.to_vec())
}

/// The request bodies the API reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `POST /token` (an empty body stands for `{}`).
    Token,
    /// `POST /tickets`.
    Hold,
    /// `POST /points`.
    Charge,
    /// `POST /payments`.
    Pay,
}

impl Body {
    /// Every body, for a target to pick one from a byte.
    pub const ALL: [Body; 4] = [Body::Token, Body::Hold, Body::Charge, Body::Pay];
}

/// What a body that passed carries: the ids of its list form, if it has one (`seat_ids` or
/// `ticket_ids`), or of its single form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The ids named (seats or tickets), in the order given; empty for the other bodies.
    pub ids: Vec<i64>,
    /// The `user_id` it names, if any.
    pub user_id: Option<UserId>,
}

/// Parses `bytes` as the handler of `which` does: strict JSON into the typed request, then the
/// one-or-many form.
pub fn body(which: Body, bytes: &[u8]) -> Result<Parsed, Refusal> {
    let req = Incoming {
        body: bytes.to_vec(),
        ..Incoming::default()
    };
    let ids = |form: OneOrMany<i64>| match form {
        OneOrMany::One(id) => vec![id],
        OneOrMany::Many(ids) => ids,
    };
    match which {
        Body::Token => {
            let b: TokenBody = req.json_or_empty().map_err(refusal)?;
            Ok(Parsed {
                ids: Vec::new(),
                user_id: b.user_id,
            })
        }
        Body::Hold => {
            let b: HoldBody = req.json().map_err(refusal)?;
            let user_id = b.user_id;
            let form = match b.seats().map_err(refusal)? {
                OneOrMany::One(s) => OneOrMany::One(s.get()),
                OneOrMany::Many(v) => OneOrMany::Many(v.iter().map(|s| s.get()).collect()),
            };
            Ok(Parsed {
                ids: ids(form),
                user_id,
            })
        }
        Body::Charge => {
            let b: ChargeBody = req.json().map_err(refusal)?;
            Ok(Parsed {
                ids: vec![b.amount.get()],
                user_id: b.user_id,
            })
        }
        Body::Pay => {
            let b: PayBody = req.json().map_err(refusal)?;
            let user_id = b.user_id;
            let form = match b.tickets().map_err(refusal)? {
                OneOrMany::One(t) => OneOrMany::One(t.get()),
                OneOrMany::Many(v) => OneOrMany::Many(v.iter().map(|t| t.get()).collect()),
            };
            Ok(Parsed {
                ids: ids(form),
                user_id,
            })
        }
    }
}

/// The bearer token of an `Authorization` header value, as the guards read it.
pub fn bearer(header: &str) -> Result<String, Refusal> {
    let req = Incoming {
        authorization: Some(header),
        ..Incoming::default()
    };
    let token = req.bearer().map_err(refusal)?;
    Ok(token.to_string())
}

/// An `Idempotency-Key` header value, checked.
pub fn idempotency_key(header: &str) -> Result<String, Refusal> {
    let req = Incoming {
        idempotency_key: Some(header),
        ..Incoming::default()
    };
    match req.idempotency_key().map_err(refusal)? {
        Some(k) => Ok(k.as_str().to_string()),
        None => Err(refusal(crate::Error::internal("no key"))),
    }
}

/// A request target (`/path?query`) as a worker reads it: the route of `method` and the path
/// (`Ok(label)` of the endpoint matched), and then — for a matched route — every `user_id` of
/// the query checked against `user`'s token.
pub fn route(method: &str, target: &str, user: UserId) -> Result<&'static str, Refusal> {
    let path = target.split('?').next().unwrap_or("");
    let route = router::resolve(method, path).map_err(|e| match e {
        Unrouted::NotFound => refusal(Failure::NoRoute),
        Unrouted::MethodNotAllowed(allow) => refusal(Failure::MethodNotAllowed(allow)),
        Unrouted::BadId(e, _) => refusal(e),
    })?;
    let req = Incoming {
        query: target.split_once('?').map_or("", |(_, q)| q),
        ..Incoming::default()
    };
    let who = Identity::new(user, crate::EntryId::new(1).expect("a valid id"));
    req.check_query_user(&who).map_err(refusal)?;
    Ok(route.endpoint().label())
}
