//! Request bodies into the typed requests (`POST /token`, `/tickets`, `/points`, `/payments`),
//! as the handlers parse them. The first byte picks the body; the rest is the body.
//!
//! Holds: nothing panics; a body that passes is a JSON object (or, for `POST /token`, empty) and
//! the seat or ticket ids it names are positive; every refusal is `400` with the error shape and
//! the code `invalid_json` or `invalid_request`.
#![no_main]

use booking::http::fuzzing::{self, Body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let which = Body::ALL[pick as usize % Body::ALL.len()];
    match fuzzing::body(which, bytes) {
        Ok(parsed) => {
            if bytes.is_empty() {
                assert_eq!(which, Body::Token, "only POST /token takes an empty body");
                return;
            }
            let v: serde_json::Value =
                serde_json::from_slice(bytes).expect("a body that passed is JSON");
            assert!(v.is_object(), "a body that passed is an object: {v}");
            if matches!(which, Body::Hold | Body::Pay) {
                assert!(parsed.ids.iter().all(|id| *id > 0), "{parsed:?}");
            }
        }
        Err((status, body)) => {
            assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
            let v: serde_json::Value = serde_json::from_slice(&body).expect("an error is JSON");
            let code = v["error"]["code"].as_str().expect("an error code");
            assert!(
                matches!(code, "invalid_json" | "invalid_request"),
                "unexpected code {code}"
            );
            assert!(v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
    }
});
