//! Request targets: the method (first byte) and `/path?query` (the rest) through the router and
//! the `?user_id=` check against the token's user, as a worker runs them.
//!
//! Holds: nothing panics; a refusal is `400 invalid_request` (a bad id in the path, a `user_id`
//! that is not a UUID), `403 forbidden` (another user's id), `404 not_found` or
//! `405 method_not_allowed`, each with the error shape; a target that passes names no other
//! user in its query.
#![no_main]

use booking::http::fuzzing;
use booking::UserId;
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 8] = [
    "GET", "POST", "DELETE", "HEAD", "PUT", "PATCH", "OPTIONS", "OTHER",
];
const USER: &str = "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f";

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let method = METHODS[m as usize % METHODS.len()];
    let target = String::from_utf8_lossy(rest);
    let user = UserId::parse(USER).unwrap();
    match fuzzing::route(method, &target, user) {
        Ok(_label) => {
            let query = target.split_once('?').map_or("", |(_, q)| q);
            // Whatever survives must name only the token's user (the router's reading of the
            // query is the form decoder's; a second, independent reading must agree).
            for pair in query.split('&') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                if k == "user_id" {
                    let v = v.replace('+', " ");
                    if let Some(u) = decode(&v).and_then(|v| UserId::parse(&v).ok()) {
                        assert_eq!(u, user, "{target}");
                    }
                }
            }
        }
        Err((status, body)) => {
            let v: serde_json::Value = serde_json::from_slice(&body).expect("an error is JSON");
            let code = v["error"]["code"].as_str().expect("a code");
            let expected = match status {
                400 => "invalid_request",
                403 => "forbidden",
                404 => "not_found",
                405 => "method_not_allowed",
                other => panic!("status {other} ({code}) for {method} {target:?}"),
            };
            assert_eq!(code, expected, "{method} {target:?}");
        }
    }
});

/// Percent-decoding, strictly (`None` on a bad escape or bytes that are not UTF-8).
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
