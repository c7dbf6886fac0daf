//! openapi.yaml is the one source of the OpenAPI document: the served `/openapi.json` is it,
//! and the server's real answers fit its schemas. (That it names exactly the routes the server
//! has and every error code with its status is checked against the server's own tables, in
//! `src/http/router.rs`.)

mod support;

use rstest_reuse::apply;

use serde_json::{json, Value};
use support::{engines, Backend, TestServer};

fn yaml() -> Value {
    serde_norway::from_str(include_str!("../openapi.yaml")).expect("openapi.yaml parses")
}

#[test]
fn the_served_document_is_openapi_yaml() {
    let srv = TestServer::start();
    let served = srv.client().get("/openapi.json");
    served.expect(200, "");
    assert_eq!(served.json(), yaml());
    assert_eq!(served.header("Content-Type"), Some("application/json"));
}

/// A small validator for the subset of OpenAPI schemas the document uses.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return check(doc, &doc["components"]["schemas"][name], v, at);
    }
    if v.is_null() {
        assert!(
            schema["nullable"] == json!(true),
            "{at}: null is not allowed"
        );
        return;
    }
    if let Some(options) = schema["enum"].as_array() {
        assert!(options.contains(v), "{at}: {v} is not one of {options:?}");
    }
    match schema["type"].as_str() {
        Some("object") => {
            let obj = v
                .as_object()
                .unwrap_or_else(|| panic!("{at}: not an object: {v}"));
            let props = schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for req in schema["required"].as_array().into_iter().flatten() {
                assert!(
                    obj.contains_key(req.as_str().unwrap()),
                    "{at}: missing {req}"
                );
            }
            for (k, val) in obj {
                match props.get(k) {
                    Some(p) => check(doc, p, val, &format!("{at}.{k}")),
                    None => assert!(
                        schema["additionalProperties"] != json!(false),
                        "{at}: unexpected {k}"
                    ),
                }
            }
        }
        Some("array") => {
            for (i, item) in v
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not an array"))
                .iter()
                .enumerate()
            {
                check(doc, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        Some("integer") => {
            let n = v
                .as_i64()
                .unwrap_or_else(|| panic!("{at}: not an integer: {v}"));
            if let Some(min) = schema["minimum"].as_i64() {
                assert!(n >= min, "{at}: {n} < {min}");
            }
        }
        Some("string") => {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("{at}: not a string: {v}"));
            match schema["format"].as_str() {
                Some("date-time") => {
                    assert!(chrono::DateTime::parse_from_rfc3339(s).is_ok(), "{at}: {s}")
                }
                Some("uuid") => assert!(booking::UserId::parse(s).is_ok(), "{at}: {s}"),
                _ => {}
            }
        }
        Some("boolean") => assert!(v.is_boolean(), "{at}: not a boolean: {v}"),
        Some(other) => panic!("{at}: type {other} not handled"),
        None => {}
    }
}

/// Checks one real answer against the document's schema for that operation and status.
fn conforms(doc: &Value, method: &str, path: &str, r: &support::Resp) {
    let op = &doc["paths"][path][method.to_lowercase()];
    let mut resp = op["responses"][r.status.to_string()].clone();
    assert!(
        !resp.is_null(),
        "{method} {path} answered an undocumented {}",
        r.status
    );
    if let Some(name) = resp["$ref"]
        .as_str()
        .map(|s| s.rsplit('/').next().unwrap().to_string())
    {
        resp = doc["components"]["responses"][name].clone();
    }
    let (ty, media) = resp["content"].as_object().unwrap().iter().next().unwrap();
    assert!(
        r.header("Content-Type").unwrap().starts_with(ty.as_str()),
        "{method} {path}"
    );
    if ty == "application/json" {
        check(
            doc,
            &media["schema"],
            &r.json(),
            &format!("{method} {path} {}", r.status),
        );
    }
}

#[apply(engines)]
fn real_answers_fit_the_documented_schemas(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let doc = yaml();
    let srv = TestServer::start_on(backend, booking::Config::default().with_max_active(1));
    let c = srv.client();
    let u = srv.enter();
    let waiting = srv.enter();
    let ok = |method: &str, path: &str, r: support::Resp| {
        assert!(r.status < 500, "{method} {path}: {}", r.text());
        conforms(&doc, method, path, &r);
        r
    };
    ok("POST", "/token", c.post("/token", ""));
    ok(
        "POST",
        "/token",
        c.post_json("/token", json!({"user_id": u.id})),
    );
    ok("POST", "/token", c.post("/token", "{"));
    ok("GET", "/token", u.get("/token"));
    ok("GET", "/token", waiting.get("/token"));
    ok("GET", "/token", c.get("/token"));
    ok("GET", "/concerts", u.get("/concerts"));
    ok("GET", "/concerts", waiting.get("/concerts"));
    ok("GET", "/concerts/{concert_id}", u.get("/concerts/1"));
    ok("GET", "/concerts/{concert_id}", u.get("/concerts/77"));
    ok("GET", "/concerts/{concert_id}", u.get("/concerts/x"));
    ok(
        "GET",
        "/concerts/{concert_id}:{showtime_id}",
        u.get("/concerts/1:1"),
    );
    ok(
        "GET",
        "/concerts/{concert_id}:{showtime_id}",
        u.get("/concerts/1:77"),
    );
    let t = ok("POST", "/tickets", u.hold(1, 1));
    ok("POST", "/tickets", u.hold(1, 1));
    ok(
        "POST",
        "/tickets",
        u.post("/tickets", json!({"showtime_id": 1})),
    );
    ok("GET", "/tickets", u.get("/tickets"));
    ok("POST", "/payments", u.pay(t.json()["id"].as_i64().unwrap()));
    ok("POST", "/points", u.charge(1_000_000));
    ok("POST", "/points", u.charge(0));
    ok(
        "POST",
        "/points",
        u.with_key("POST", "/points", "k", json!({"amount": 2})),
    );
    ok(
        "POST",
        "/points",
        u.with_key("POST", "/points", "k", json!({"amount": 3})),
    );
    ok("GET", "/points", u.get("/points"));
    ok(
        "GET",
        "/points",
        u.get(&format!("/points?user_id={}", waiting.id)),
    );
    ok("POST", "/payments", u.pay(t.json()["id"].as_i64().unwrap()));
    ok("POST", "/payments", u.pay(12345));
    ok("GET", "/point_history", u.get("/point_history"));
    ok("GET", "/payment_history", u.get("/payment_history"));
    ok("GET", "/healthz", c.get("/healthz"));
    ok("GET", "/metrics", c.get("/metrics"));
    ok("GET", "/openapi.json", c.get("/openapi.json"));
    // The web page's files: the operations tagged `web` (exactly the server's files, as the
    // in-crate check makes sure).
    let files: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, item)| {
            item["get"]["tags"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("web")))
        })
        .map(|(path, _)| path.clone())
        .collect();
    assert!(!files.is_empty());
    for path in &files {
        ok("GET", path, c.get(path));
    }
    let big = format!(r#"{{"amount": 1, "x": "{}"}}"#, "x".repeat(70_000));
    ok("POST", "/points", u.http.post("/points", &big));
}

#[test]
fn the_schema_check_is_not_vacuous() {
    let doc = yaml();
    let ticket = json!({"$ref": "#/components/schemas/Ticket"});
    let fails = |v: Value| std::panic::catch_unwind(|| check(&doc, &ticket, &v, "t")).is_err();
    let good = json!({"id": 1, "user_id": "00000000-0000-4000-8000-000000000000", "concert_id": 1,
        "showtime_id": 1, "seat_id": 1, "seat_number": 1, "price": 5, "status": "held",
        "held_until": "2030-01-01T00:00:00Z"});
    assert!(!fails(good.clone()));
    for (k, bad) in [
        ("status", json!("gone")),
        ("id", json!("1")),
        ("held_until", json!("tomorrow")),
        ("price", json!(null)),
        ("extra", json!(1)),
    ] {
        let mut v = good.clone();
        v[k] = bad;
        assert!(fails(v), "{k}");
    }
    let mut v = good;
    v.as_object_mut().unwrap().remove("seat_number");
    assert!(fails(v));
}
