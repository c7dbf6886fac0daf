//! The route table: which method and path is which endpoint, and the ids in the path.
//!
//! Paths are matched exactly (no trailing slash). A known path with another method is
//! `405 method_not_allowed`; anything else is `404 not_found`. `HEAD` is served wherever `GET` is.

use super::assets::{self, Asset};
use crate::{ConcertId, Error, ShowtimeId, TicketId};

/// Who may call an endpoint (API.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed.
    Public,
    /// A valid token, any queue state.
    Identity,
    /// A valid token whose queue entry is active now.
    Active,
}

macro_rules! endpoints {
    ($($name:ident => $method:literal $path:literal $access:ident,)*) => {
        /// One operation of the HTTP API (also the `route` label of its metrics).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Endpoint {
            $(
                #[doc = concat!("`", $method, " ", $path, "`")]
                $name,
            )*
            /// No route matched (404 or 405).
            Unmatched,
        }

        impl Endpoint {
            /// Every routed endpoint, in table order (without [`Endpoint::Unmatched`]).
            pub const ALL: &'static [Endpoint] = &[$(Endpoint::$name,)*];

            /// Its HTTP method.
            pub fn method(self) -> &'static str {
                match self {
                    $(Endpoint::$name => $method,)*
                    Endpoint::Unmatched => "",
                }
            }

            /// Its path template, as written in openapi.yaml (`*` for the static assets).
            pub fn path(self) -> &'static str {
                match self {
                    $(Endpoint::$name => $path,)*
                    Endpoint::Unmatched => "",
                }
            }

            /// Who may call it.
            pub fn access(self) -> Access {
                match self {
                    $(Endpoint::$name => Access::$access,)*
                    Endpoint::Unmatched => Access::Public,
                }
            }

            /// The label of its metrics: `"GET /concerts/{concert_id}"`.
            pub fn label(self) -> &'static str {
                match self {
                    $(Endpoint::$name => concat!($method, " ", $path),)*
                    Endpoint::Unmatched => "unmatched",
                }
            }

            /// Its index in [`Endpoint::ALL`]; `Unmatched` comes last.
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

endpoints! {
    Asset => "GET" "*" Public,
    Healthz => "GET" "/healthz" Public,
    OpenApi => "GET" "/openapi.json" Public,
    Metrics => "GET" "/metrics" Public,
    EnterQueue => "POST" "/token" Public,
    QueueStatus => "GET" "/token" Identity,
    Concerts => "GET" "/concerts" Active,
    Showtimes => "GET" "/concerts/{concert_id}" Active,
    Seats => "GET" "/concerts/{concert_id}:{showtime_id}" Active,
    Hold => "POST" "/tickets" Active,
    Release => "DELETE" "/tickets/{ticket_id}" Identity,
    Extend => "POST" "/tickets/{ticket_id}/extend" Active,
    Cancel => "POST" "/tickets/{ticket_id}/cancel" Identity,
    Tickets => "GET" "/tickets" Identity,
    Charge => "POST" "/points" Identity,
    Balance => "GET" "/points" Identity,
    PointHistory => "GET" "/point_history" Identity,
    Pay => "POST" "/payments" Identity,
    PaymentHistory => "GET" "/payment_history" Identity,
}

/// A matched request: the endpoint and what its path carries.
#[derive(Debug, Clone, Copy)]
pub enum Route {
    /// A static file.
    Asset(&'static Asset),
    /// `GET /concerts/{concert_id}`.
    Showtimes(ConcertId),
    /// `GET /concerts/{concert_id}:{showtime_id}`.
    Seats(ConcertId, ShowtimeId),
    /// `/tickets/{ticket_id}` and its actions: the endpoint and the ticket.
    Ticket(Endpoint, TicketId),
    /// Any endpoint whose path carries nothing.
    Plain(Endpoint),
}

impl Route {
    /// The endpoint.
    pub fn endpoint(&self) -> Endpoint {
        match self {
            Route::Asset(_) => Endpoint::Asset,
            Route::Showtimes(_) => Endpoint::Showtimes,
            Route::Seats(..) => Endpoint::Seats,
            Route::Ticket(e, _) => *e,
            Route::Plain(e) => *e,
        }
    }
}

/// A path that exists, before the method is checked: its endpoints by method.
enum Resource {
    Asset(&'static Asset),
    Fixed(&'static str),
    Showtimes(Result<ConcertId, Error>),
    Seats(Result<(ConcertId, ShowtimeId), Error>),
    /// `/tickets/{ticket_id}` (action `""`), `/tickets/{ticket_id}/extend`, `…/cancel`.
    Ticket(Result<TicketId, Error>, &'static str),
}

fn resource(path: &str) -> Option<Resource> {
    if let Some(asset) = assets::find(path) {
        return Some(Resource::Asset(asset));
    }
    if let Some(rest) = path.strip_prefix("/concerts/") {
        if rest.is_empty() || rest.contains('/') {
            return None;
        }
        let rest = percent_encoding::percent_decode_str(rest).decode_utf8_lossy();
        return Some(match rest.split_once(':') {
            None => Resource::Showtimes(ConcertId::parse(&rest)),
            Some((c, s)) => {
                Resource::Seats(ConcertId::parse(c).and_then(|c| Ok((c, ShowtimeId::parse(s)?))))
            }
        });
    }
    if let Some(rest) = path.strip_prefix("/tickets/") {
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        let action = match action {
            "" => "",
            "extend" => "/extend",
            "cancel" => "/cancel",
            _ => return None,
        };
        if id.is_empty() {
            return None;
        }
        let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
        return Some(Resource::Ticket(TicketId::parse(&id), action));
    }
    Endpoint::ALL
        .iter()
        .find(|e| e.path() == path && path.starts_with('/'))
        .map(|e| Resource::Fixed(e.path()))
}

/// Matches `method path` (the path without its query) to a route. `Err` is the reply to give:
/// `not_found`, `method_not_allowed` (with the allowed methods), or `invalid_request` for an id
/// that is not a positive integer.
pub fn resolve(method: &str, path: &str) -> Result<Route, Unrouted> {
    let method = if method == "HEAD" { "GET" } else { method };
    let res = resource(path).ok_or(Unrouted::NotFound)?;
    let allowed = |m: &'static str| -> Result<(), Unrouted> {
        if m == method {
            Ok(())
        } else {
            Err(Unrouted::MethodNotAllowed(if m == "GET" {
                "GET, HEAD"
            } else {
                m
            }))
        }
    };
    match res {
        Resource::Asset(a) => allowed("GET").map(|_| Route::Asset(a)),
        Resource::Showtimes(id) => {
            allowed("GET")?;
            id.map(Route::Showtimes)
                .map_err(|e| Unrouted::BadId(e, Endpoint::Showtimes))
        }
        Resource::Seats(ids) => {
            allowed("GET")?;
            ids.map(|(c, s)| Route::Seats(c, s))
                .map_err(|e| Unrouted::BadId(e, Endpoint::Seats))
        }
        Resource::Ticket(id, action) => {
            let endpoint = match action {
                "" => Endpoint::Release,
                "/extend" => Endpoint::Extend,
                _ => Endpoint::Cancel,
            };
            allowed(endpoint.method())?;
            id.map(|id| Route::Ticket(endpoint, id))
                .map_err(|e| Unrouted::BadId(e, endpoint))
        }
        Resource::Fixed(p) => {
            let mut methods = Endpoint::ALL.iter().filter(|e| e.path() == p);
            let found = methods.clone().find(|e| e.method() == method);
            match found {
                Some(e) => Ok(Route::Plain(*e)),
                None => Err(Unrouted::MethodNotAllowed(
                    match (methods.next(), methods.next()) {
                        (Some(_), Some(_)) => "GET, HEAD, POST",
                        (Some(e), None) if e.method() == "GET" => "GET, HEAD",
                        (Some(e), None) => e.method(),
                        _ => "",
                    },
                )),
            }
        }
    }
}

/// Why a request matched no route.
#[derive(Debug)]
pub enum Unrouted {
    /// No such path.
    NotFound,
    /// The path exists; these methods are allowed on it.
    MethodNotAllowed(&'static str),
    /// The path's id is not a positive integer (on this endpoint).
    BadId(Error, Endpoint),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: &str, path: &str) -> Endpoint {
        resolve(method, path).unwrap().endpoint()
    }

    #[test]
    fn every_endpoint_resolves_by_its_method_and_path() {
        for e in Endpoint::ALL.iter().filter(|e| **e != Endpoint::Asset) {
            let path = e
                .path()
                .replace("{concert_id}", "1")
                .replace("{showtime_id}", "2")
                .replace("{ticket_id}", "3");
            assert_eq!(ok(e.method(), &path), *e, "{}", e.label());
        }
        assert_eq!(ok("GET", "/"), Endpoint::Asset);
        assert_eq!(ok("HEAD", "/healthz"), Endpoint::Healthz);
    }

    #[test]
    fn ids_come_out_of_the_path() {
        match resolve("GET", "/concerts/12:34").unwrap() {
            Route::Seats(c, s) => assert_eq!((c.get(), s.get()), (12, 34)),
            other => panic!("{other:?}"),
        }
        match resolve("GET", "/concerts/12%3A34").unwrap() {
            Route::Seats(c, s) => assert_eq!((c.get(), s.get()), (12, 34)),
            other => panic!("{other:?}"),
        }
        for bad in [
            "/concerts/0",
            "/concerts/x",
            "/concerts/1:",
            "/concerts/:2",
            "/concerts/1:-2",
        ] {
            assert!(
                matches!(resolve("GET", bad), Err(Unrouted::BadId(..))),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_paths_and_wrong_methods() {
        for p in [
            "/nope",
            "/concerts/",
            "/concerts/1/2",
            "/token/",
            "/TOKEN",
            "",
        ] {
            assert!(matches!(resolve("GET", p), Err(Unrouted::NotFound)), "{p}");
        }
        assert!(matches!(
            resolve("DELETE", "/token"),
            Err(Unrouted::MethodNotAllowed("GET, HEAD, POST"))
        ));
        assert!(matches!(
            resolve("POST", "/concerts"),
            Err(Unrouted::MethodNotAllowed("GET, HEAD"))
        ));
        assert!(matches!(
            resolve("GET", "/payments"),
            Err(Unrouted::MethodNotAllowed("POST"))
        ));
        assert!(matches!(
            resolve("PUT", "/concerts/x"),
            Err(Unrouted::MethodNotAllowed(_))
        ));
        assert!(matches!(
            resolve("GET", "/tickets/5"),
            Err(Unrouted::MethodNotAllowed("DELETE"))
        ));
        assert!(matches!(
            resolve("GET", "/tickets/5/cancel"),
            Err(Unrouted::MethodNotAllowed("POST"))
        ));
        for p in ["/tickets/5/refund", "/tickets/", "/tickets/5/extend/x"] {
            assert!(matches!(resolve("POST", p), Err(Unrouted::NotFound)), "{p}");
        }
        assert!(matches!(
            resolve("DELETE", "/tickets/x"),
            Err(Unrouted::BadId(_, Endpoint::Release))
        ));
    }
}

/// openapi.yaml against the server's own tables: the document compiled in is it, it names
/// exactly the routes of [`Endpoint`] and the files of `assets::ASSETS`, and it gives every
/// error code ([`Failure`](super::reply::Failure), with every [`Error`] variant) its status.
/// (That real answers fit its schemas is checked over HTTP, in `tests/http_openapi.rs`.)
#[cfg(test)]
mod openapi_check {
    use super::super::assets::{ASSETS, OPENAPI_JSON};
    use super::super::reply::Failure;
    use super::Endpoint;
    use crate::{Entity, Error, QueueState};
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn yaml() -> Value {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"));
        serde_norway::from_str(text).expect("openapi.yaml parses")
    }

    /// `(method path, operation)` of every operation of the document.
    fn operations(doc: &Value) -> Vec<(String, &Value)> {
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if ["get", "post", "put", "patch", "delete", "head", "options"]
                    .contains(&method.as_str())
                {
                    ops.push((format!("{} {path}", method.to_uppercase()), op));
                }
            }
        }
        ops
    }

    #[test]
    fn the_document_compiled_in_is_openapi_yaml() {
        let served: Value = serde_json::from_str(OPENAPI_JSON).expect("JSON");
        assert_eq!(served, yaml());
    }

    #[test]
    fn the_document_names_exactly_the_routes_served() {
        let doc = yaml();
        let documented: BTreeSet<String> = operations(&doc).into_iter().map(|(o, _)| o).collect();
        let mut served: BTreeSet<String> = Endpoint::ALL
            .iter()
            .filter(|e| **e != Endpoint::Asset)
            .map(|e| e.label().to_string())
            .collect();
        let assets: BTreeSet<String> = ASSETS.iter().map(|a| format!("GET {}", a.path)).collect();
        served.extend(assets.iter().cloned());
        assert_eq!(documented, served);
        // The files are the operations tagged `web` (the HTTP tests fetch those), each
        // documented with its Content-Type.
        let web: BTreeSet<String> = operations(&doc)
            .into_iter()
            .filter(|(_, op)| op["tags"].as_array().unwrap().contains(&"web".into()))
            .map(|(o, _)| o)
            .collect();
        assert_eq!(web, assets);
        for a in ASSETS {
            let content = &doc["paths"][a.path]["get"]["responses"]["200"]["content"];
            let ty = content.as_object().unwrap().keys().next().unwrap();
            assert!(a.content_type.starts_with(ty.as_str()), "{}", a.path);
        }
    }

    /// One sample of each variant of `$ty`, beside the pattern of its variant: the match on
    /// the patterns has no wildcard, so a new variant does not compile until it is listed.
    macro_rules! every {
        ($ty:ty: $($pat:pat_param => $sample:expr,)*) => {{
            #[allow(dead_code)]
            fn exhaustive(x: &$ty) {
                match x {
                    $($pat => {})*
                }
            }
            let all: Vec<($ty, fn(&$ty) -> bool)> =
                vec![$(($sample, |x: &$ty| matches!(x, $pat)),)*];
            // Each sample is of its own line's variant and of no other line's.
            for (i, (sample, _)) in all.iter().enumerate() {
                for (j, (_, is)) in all.iter().enumerate() {
                    assert_eq!(is(sample), i == j, "{sample:?} against line {j}");
                }
            }
            all.into_iter().map(|(sample, _)| sample).collect::<Vec<$ty>>()
        }};
    }

    /// Every failure the server can answer: each HTTP-only one and each library error.
    fn every_failure() -> Vec<Failure> {
        let errors = every!(Error:
            Error::InvalidRequest(_) => Error::InvalidRequest(String::new()),
            Error::InvalidAmount(_) => Error::InvalidAmount(String::new()),
            Error::Unauthorized(_) => Error::Unauthorized(String::new()),
            Error::InsufficientPoints { .. } => Error::InsufficientPoints {
                balance: crate::Points::ZERO,
                price: crate::Points::new(1),
            },
            Error::QueueNotActive(_) => Error::QueueNotActive(QueueState::Waiting),
            Error::NotFound(_) => Error::NotFound(Entity::Ticket),
            Error::SeatUnavailable(_) => Error::SeatUnavailable(crate::SeatId::new(1).unwrap()),
            Error::HoldLimitReached(_) => Error::HoldLimitReached(1),
            Error::HoldExpired(_) => Error::HoldExpired(crate::TicketId::new(1).unwrap()),
            Error::AlreadyPaid(_) => Error::AlreadyPaid(crate::TicketId::new(1).unwrap()),
            Error::ShowtimeClosed(..) => {
                Error::ShowtimeClosed(crate::ShowtimeId::new(1).unwrap(), crate::Closed::Started)
            },
            Error::SaleNotOpen { .. } => Error::SaleNotOpen {
                showtime: crate::ShowtimeId::new(1).unwrap(),
                opens_at: chrono::Utc::now(),
            },
            Error::TicketNotHeld(_) => Error::TicketNotHeld(crate::TicketId::new(1).unwrap()),
            Error::ExtensionLimit { .. } => Error::ExtensionLimit {
                ticket: crate::TicketId::new(1).unwrap(),
                max: 1,
            },
            Error::TicketNotPaid(_) => Error::TicketNotPaid(crate::TicketId::new(1).unwrap()),
            Error::CancelClosed { .. } => Error::CancelClosed {
                ticket: crate::TicketId::new(1).unwrap(),
                closed_at: chrono::Utc::now(),
            },
            Error::BalanceLimit { .. } => Error::BalanceLimit {
                balance: crate::Points::ZERO,
                max: crate::Points::new(1),
            },
            Error::IdempotencyConflict => Error::IdempotencyConflict,
            Error::IdempotencyKeyReused => Error::IdempotencyKeyReused,
            Error::QueueFull(_) => Error::QueueFull(1),
            Error::Busy => Error::Busy,
            Error::Internal(_) => Error::internal("x"),
        );
        let failures = every!(Failure:
            Failure::Domain(_) => Failure::Domain(Error::Busy),
            Failure::InvalidJson(_) => Failure::InvalidJson(String::new()),
            Failure::Forbidden => Failure::Forbidden,
            Failure::NoRoute => Failure::NoRoute,
            Failure::MethodNotAllowed(_) => Failure::MethodNotAllowed("GET"),
            Failure::PayloadTooLarge(_) => Failure::PayloadTooLarge(1),
            Failure::RateLimited(_) => Failure::RateLimited(std::time::Duration::from_secs(1)),
        );
        failures
            .into_iter()
            .filter(|f| !matches!(f, Failure::Domain(_)))
            .chain(errors.into_iter().map(Failure::Domain))
            .collect()
    }

    #[test]
    fn the_document_lists_every_error_code_with_its_status() {
        let all = every_failure();
        let doc = yaml();
        let codes: BTreeSet<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]
            ["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(codes, all.iter().map(|f| f.code()).collect());
        // Every status an operation can answer is success, `304` (a seat map not modified) or
        // the status of some error code.
        let statuses: BTreeSet<u16> = all.iter().map(|f| f.status()).collect();
        let response = |r: &Value| match r["$ref"].as_str() {
            Some(name) => doc["components"]["responses"][name.rsplit('/').next().unwrap()].clone(),
            None => r.clone(),
        };
        let ops = operations(&doc);
        for (op, item) in &ops {
            for status in item["responses"].as_object().unwrap().keys() {
                let s: u16 = status.parse().unwrap();
                assert!(s < 300 || s == 304 || statuses.contains(&s), "{op}: {s}");
            }
        }
        // Each code is documented at the status the server gives it: in the description of a
        // response an operation gives at that status, or as "`405 method_not_allowed`" in the
        // document's introduction (for what no single operation answers).
        let intro = doc["info"]["description"].as_str().unwrap();
        for f in &all {
            let (code, status) = (f.code(), f.status());
            let in_intro = intro.contains(&format!("`{status} {code}`"));
            let in_an_operation = ops.iter().any(|(_, item)| {
                let r = response(&item["responses"][status.to_string()]);
                r["description"]
                    .as_str()
                    .is_some_and(|d| d.contains(&format!("`{code}`")))
            });
            assert!(
                in_intro || in_an_operation,
                "{code} is not documented with status {status}"
            );
        }
    }
}
