//! The bearer token: an `Authorization` header value through the HTTP layer's parsing, then
//! `Booking::authorize` and `Booking::authorize_active` on what it carries. The first byte picks
//! the mode:
//! - 0: the bytes are the header value;
//! - 1: the bytes are the token itself;
//! - 2: the bytes are a JWT's header and claims (split at the first 0xFF byte; without one, all
//!   claims under an HS256 header), signed with the server's secret, so that inputs get past
//!   the signature and exercise what is read after it.
//!
//! Holds: nothing panics; a refused token is `401 unauthorized` (or, for the active guard,
//! `403 queue_not_active`); a token that passes is signed with HS256, and names the user and
//! entry its claims say, before its `exp`.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use booking::{Booking, Config, Durability, ManualClock};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use std::sync::{Arc, OnceLock};

const SECRET: &[u8] = b"fuzzing-secret-fuzzing-secret-32";

fn booking() -> &'static Booking {
    static B: OnceLock<Booking> = OnceLock::new();
    B.get_or_init(|| {
        let cfg = Config::default()
            .with_jwt_secret(SECRET)
            .with_durability(Durability::Normal);
        let dir = std::env::temp_dir().join("booking-fuzz-bearer");
        let _ = std::fs::remove_dir_all(&dir); // a previous run's
        std::fs::create_dir_all(&dir).expect("a directory for the database");
        Booking::open_with_clock(dir.join("booking.db"), cfg, Arc::new(ManualClock::fixed()))
            .expect("open")
    })
}

fn sign(header: &[u8], claims: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// What a check reads of a JWT's header and claims. Read as jsonwebtoken reads them: into a
/// struct, skipping unknown fields (whose strings serde_json does not check for UTF-8: a claims
/// object with invalid UTF-8 in an unknown field is not JSON, yet a token carrying it passes —
/// harmless, since only the server's secret signs tokens; see the corpus file
/// seed-claims-invalid-utf8-in-unknown-field).
#[derive(serde::Deserialize)]
struct Header {
    alg: String,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    eid: i64,
    exp: i64,
}

fn check(token: &str, signed: Option<(&[u8], &[u8])>) {
    let b = booking();
    match b.authorize(token) {
        Ok(who) => {
            let (header, claims) = signed.expect("only a token signed with the secret passes");
            let header: Header = serde_json::from_slice(header).expect("a header");
            assert_eq!(header.alg, "HS256");
            let claims: Claims = serde_json::from_slice(claims).expect("claims");
            assert_eq!(
                booking::UserId::parse(&claims.sub).ok(),
                Some(who.user_id())
            );
            assert_eq!(claims.eid, who.entry_id().get());
            assert!(b.now().timestamp() < claims.exp, "exp {}", claims.exp);
            match b.authorize_active(token) {
                Ok(_) => panic!("no entry exists in this database"),
                Err(e) => assert!(
                    matches!(e.code(), "unauthorized" | "queue_not_active"),
                    "{e:?}"
                ),
            }
        }
        Err(e) => assert_eq!(e.code(), "unauthorized", "{e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let header = String::from_utf8_lossy(rest);
            match booking::http::fuzzing::bearer(&header) {
                Ok(token) => check(&token, None),
                Err((status, body)) => {
                    assert_eq!(status, 401);
                    let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
                    assert_eq!(v["error"]["code"], "unauthorized");
                }
            }
        }
        1 => check(&String::from_utf8_lossy(rest), None),
        _ => {
            let (header, claims) = match rest.iter().position(|b| *b == 0xFF) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], rest),
            };
            check(&sign(header, claims), Some((header, claims)));
        }
    }
});
