//! What a handler answers, before it becomes bytes on the socket; and the one place an error
//! becomes an HTTP response: [`Failure`] (the library's [`Error`] plus what only HTTP can get
//! wrong) with its status from [`Failure::status`], as `{"error": {"code", "message"}}`.

use crate::Error;
use serde::Serialize;
use std::borrow::Cow;
use std::sync::Arc;

/// Content types the server sends.
pub const JSON: &str = "application/json";
/// The OpenMetrics text format (what `prometheus-client` writes; Prometheus scrapes it).
pub const PROMETHEUS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a request failed: a rule of the library, or something about the HTTP request itself.
#[derive(Debug)]
pub enum Failure {
    /// A library error (its code and message, with the status of the table below).
    Domain(Error),
    /// `invalid_json`: the body is not JSON.
    InvalidJson(String),
    /// `forbidden`: a `user_id` in the request is not the token's user.
    Forbidden,
    /// `not_found`: no such route.
    NoRoute,
    /// `method_not_allowed`, with the methods the path allows.
    MethodNotAllowed(&'static str),
    /// `payload_too_large`: a body over the limit.
    PayloadTooLarge(usize),
    /// `rate_limited`: this address entered too often; it may again after the duration.
    RateLimited(std::time::Duration),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Domain(e)
    }
}

impl Failure {
    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Domain(e) => e.code(),
            Failure::InvalidJson(_) => "invalid_json",
            Failure::Forbidden => "forbidden",
            Failure::NoRoute => "not_found",
            Failure::MethodNotAllowed(_) => "method_not_allowed",
            Failure::PayloadTooLarge(_) => "payload_too_large",
            Failure::RateLimited(_) => "rate_limited",
        }
    }

    /// The HTTP status of the code (`docs/API.md` §3): the one status table. Exhaustive, so a
    /// new error cannot compile without its status.
    pub fn status(&self) -> u16 {
        match self {
            Failure::InvalidJson(_) => 400,
            Failure::Forbidden => 403,
            Failure::NoRoute => 404,
            Failure::MethodNotAllowed(_) => 405,
            Failure::PayloadTooLarge(_) => 413,
            Failure::RateLimited(_) => 429,
            Failure::Domain(e) => match e {
                Error::InvalidRequest(_) | Error::InvalidAmount(_) => 400,
                Error::Unauthorized(_) => 401,
                Error::InsufficientPoints { .. } => 402,
                Error::QueueNotActive(_) => 403,
                Error::NotFound(_) => 404,
                Error::SeatUnavailable(_)
                | Error::HoldLimitReached(_)
                | Error::HoldExpired(_)
                | Error::AlreadyPaid(_)
                | Error::ShowtimeClosed(..)
                | Error::SaleNotOpen { .. }
                | Error::TicketNotHeld(_)
                | Error::ExtensionLimit { .. }
                | Error::TicketNotPaid(_)
                | Error::CancelClosed { .. }
                | Error::BalanceLimit { .. }
                | Error::IdempotencyConflict => 409,
                Error::IdempotencyKeyReused => 422,
                Error::Busy | Error::QueueFull(_) => 503,
                Error::Internal(_) => 500,
            },
        }
    }

    /// The message safe to show a client.
    pub fn message(&self) -> String {
        match self {
            Failure::Domain(e) => e.public_message(),
            Failure::InvalidJson(m) => m.clone(),
            Failure::Forbidden => "user_id is not the token's user".into(),
            Failure::NoRoute => "route not found".into(),
            Failure::MethodNotAllowed(_) => "method not allowed".into(),
            Failure::PayloadTooLarge(n) => format!("request body is larger than {n} bytes"),
            Failure::RateLimited(wait) => format!(
                "too many new entries from this address; try again in {} s",
                retry_after(*wait)
            ),
        }
    }
}

/// A reply's body: its own bytes, or bytes shared with other replies.
#[derive(Debug, Clone)]
pub enum Body {
    /// Bytes of this reply (or static ones).
    Bytes(Cow<'static, [u8]>),
    /// Bytes kept elsewhere and shared (a cached seat map).
    Shared(Arc<Vec<u8>>),
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        match self {
            Body::Bytes(b) => b,
            Body::Shared(b) => b,
        }
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_ref()
    }
}

/// A response: status, Content-Type, body and the few extra headers the API uses.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// The body.
    pub body: Body,
    /// `Allow` (on 405).
    pub allow: Option<&'static str>,
    /// `Retry-After`, in seconds (on 429).
    pub retry_after: Option<u64>,
    /// `ETag` (seat maps).
    pub etag: Option<String>,
    /// The error code, when this is an error reply (for logs).
    pub error: Option<&'static str>,
}

impl Reply {
    /// A JSON body with `status`.
    pub fn json(status: u16, value: &impl Serialize) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::bytes(status, JSON, body),
            Err(e) => Reply::failure(&Error::internal(e).into()),
        }
    }

    /// A body of the given type.
    pub fn bytes(
        status: u16,
        content_type: &'static str,
        body: impl Into<Cow<'static, [u8]>>,
    ) -> Reply {
        Reply {
            status,
            content_type,
            body: Body::Bytes(body.into()),
            allow: None,
            retry_after: None,
            etag: None,
            error: None,
        }
    }

    /// A JSON body shared with other replies (a cached seat map), not copied.
    pub fn shared_json(status: u16, body: Arc<Vec<u8>>) -> Reply {
        Reply {
            body: Body::Shared(body),
            ..Reply::bytes(status, JSON, &b""[..])
        }
    }

    /// `304 Not Modified`: no body, the current `ETag`.
    pub fn not_modified(etag: String) -> Reply {
        Reply::bytes(304, JSON, &b""[..]).with_etag(etag)
    }

    /// Sets the `ETag` header.
    pub fn with_etag(mut self, etag: String) -> Reply {
        self.etag = Some(etag);
        self
    }

    /// The contract's error shape for `f`. Internal details are logged, never sent.
    pub fn failure(f: &Failure) -> Reply {
        if let Failure::Domain(Error::Internal(cause)) = f {
            tracing::error!(target: "booking::http", error = %cause, "internal error");
        }
        #[derive(Serialize)]
        struct Body<'a> {
            error: Detail<'a>,
        }
        #[derive(Serialize)]
        struct Detail<'a> {
            code: &'a str,
            message: &'a str,
        }
        let message = f.message();
        let body = serde_json::to_vec(&Body {
            error: Detail {
                code: f.code(),
                message: &message,
            },
        })
        .unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec()
        });
        Reply {
            error: Some(f.code()),
            allow: match f {
                Failure::MethodNotAllowed(allow) => Some(allow),
                _ => None,
            },
            retry_after: match f {
                Failure::RateLimited(wait) => Some(retry_after(*wait)),
                _ => None,
            },
            ..Reply::bytes(f.status(), JSON, body)
        }
    }
}

/// Whole seconds to wait, rounded up (at least 1).
fn retry_after(wait: std::time::Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

impl From<Failure> for Reply {
    fn from(f: Failure) -> Reply {
        Reply::failure(&f)
    }
}

impl From<Error> for Reply {
    fn from(e: Error) -> Reply {
        Reply::failure(&e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Entity;

    #[test]
    fn errors_have_the_contract_shape_and_status() {
        let r = Reply::from(Error::NotFound(Entity::Ticket));
        assert_eq!(r.status, 404);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(v["error"]["message"], "ticket not found");
        assert_eq!(v.as_object().unwrap().len(), 1);
        let r = Reply::from(Failure::MethodNotAllowed("GET, HEAD"));
        assert_eq!((r.status, r.allow), (405, Some("GET, HEAD")));
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let r = Reply::from(Error::internal("disk /var/lib/x on fire"));
        assert_eq!(r.status, 500);
        assert!(!String::from_utf8_lossy(&r.body).contains("fire"));
    }
}
