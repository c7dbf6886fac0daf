//! What a handler answers, before it becomes bytes on the socket; and the one place an
//! [`Error`] becomes an HTTP response (`{"error": {"code", "message"}}` with `Error::status()`).

use crate::error::Error;
use serde::Serialize;
use std::borrow::Cow;

/// Content types the server sends.
pub const JSON: &str = "application/json";
/// Prometheus text exposition format.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A response: status, Content-Type, body and the few extra headers the API uses.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// The body.
    pub body: Cow<'static, [u8]>,
    /// `Allow` (on 405).
    pub allow: Option<&'static str>,
    /// The error code, when this is an error reply (for logs).
    pub error: Option<&'static str>,
}

impl Reply {
    /// A JSON body with `status`.
    pub fn json(status: u16, value: &impl Serialize) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::bytes(status, JSON, body),
            Err(e) => Reply::error(&Error::internal(e)),
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
            body: body.into(),
            allow: None,
            error: None,
        }
    }

    /// The contract's error shape for `e`. Internal details are logged, never sent.
    pub fn error(e: &Error) -> Reply {
        if let Error::Internal(cause) = e {
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
        let message = e.public_message();
        let body = serde_json::to_vec(&Body {
            error: Detail {
                code: e.code(),
                message: &message,
            },
        })
        .unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec()
        });
        Reply {
            error: Some(e.code()),
            ..Reply::bytes(e.status(), JSON, body)
        }
    }

    /// Sets the `Allow` header.
    pub fn with_allow(mut self, allow: &'static str) -> Reply {
        self.allow = Some(allow);
        self
    }
}

impl From<Error> for Reply {
    fn from(e: Error) -> Reply {
        Reply::error(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_the_contract_shape_and_status() {
        let r = Reply::error(&Error::NotFound("ticket"));
        assert_eq!(r.status, 404);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(v["error"]["message"], "ticket not found");
        assert_eq!(v.as_object().unwrap().len(), 1);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let r = Reply::error(&Error::internal("disk /var/lib/x on fire"));
        assert_eq!(r.status, 500);
        assert!(!String::from_utf8_lossy(&r.body).contains("fire"));
    }
}
