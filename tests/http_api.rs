//! End to end over real HTTP: every route, every guard, and the error codes of the contract.

mod support;

use rstest_reuse::apply;

use serde_json::json;
use std::time::Duration;
use support::{engines, first_showtime, raw, Backend, Client, Conn, TestServer};

#[apply(engines)]
fn the_whole_journey(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let u = srv.enter();
    assert_eq!(u.entered["status"], "active");
    assert_eq!(u.entered["position"], 0);
    assert!(u.entered["expires_at"].is_string());
    assert_eq!(u.status()["status"], "active");

    let concerts = u.get("/concerts").json();
    assert_eq!(concerts.as_array().unwrap().len(), 3);
    let (c, s, seats) = first_showtime(&u);
    let dates = u.get(&format!("/concerts/{c}")).json();
    assert!(dates
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["concert_id"] == c));
    assert_eq!(seats.len(), 50);
    assert!(seats
        .windows(2)
        .all(|w| w[0]["number"].as_i64() < w[1]["number"].as_i64()));
    let seat = &seats[4];
    assert_eq!(seat["status"], "available");

    let t = u.hold(s, seat["id"].as_i64().unwrap());
    t.expect(201, "");
    let ticket = t.json();
    assert_eq!(ticket["status"], "held");
    assert_eq!(ticket["user_id"], u.id.as_str());
    assert_eq!(ticket["concert_id"], c);
    assert_eq!(ticket["seat_number"], 5);
    let price = ticket["price"].as_i64().unwrap();

    let b = u.charge(price + 1000);
    b.expect(200, "");
    assert_eq!(b.json(), json!({"user_id": u.id, "balance": price + 1000}));
    assert_eq!(u.get("/points").json()["balance"], price + 1000);

    let p = u.pay(ticket["id"].as_i64().unwrap());
    p.expect(201, "");
    let payment = p.json();
    assert_eq!(payment["amount"], price);
    assert_eq!(payment["ticket_id"], ticket["id"]);

    assert_eq!(u.get("/payment_history").json(), json!([payment]));
    let ledger = u.get("/point_history").json();
    assert_eq!(ledger[0]["kind"], "payment");
    assert_eq!(ledger[0]["amount"], -price);
    assert_eq!(ledger[0]["balance_after"], 1000);
    assert_eq!(ledger[1]["kind"], "charge");
    assert_eq!(u.get("/tickets").json()[0]["status"], "paid");
    assert_eq!(u.get("/points").json()["balance"], 1000);

    // The seat is sold, and the payment ended the user's turn.
    let other = srv.enter();
    let seats = other.get(&format!("/concerts/{c}:{s}")).json();
    assert_eq!(seats[4]["status"], "sold");
    assert_eq!(u.status()["status"], "expired");
    u.get("/concerts").expect(403, "queue_not_active");
    // Entering again makes a new entry.
    Client::new(srv.addr)
        .post_json("/token", json!({"user_id": u.id}))
        .expect(201, "");
}

#[apply(engines)]
fn entering_the_queue(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let c = srv.client();
    for body in ["", "{}", r#"{"user_id":null}"#, " {} \n"] {
        let r = c.post("/token", body);
        r.expect(201, "");
        assert!(r.json()["token"].is_string());
    }
    let u = srv.enter();
    let again = c.post_json("/token", json!({"user_id": u.id}));
    again.expect(200, "");
    assert_eq!(again.json()["user_id"], u.id.as_str());
    assert_eq!(again.json()["position"], u.entered["position"]);
    // The fresh token works too.
    let t2 = again.json()["token"].as_str().unwrap().to_string();
    c.with_token(&t2).get("/token").expect(200, "");

    c.post("/token", r#"{"user_id":"nope"}"#)
        .expect(400, "invalid_request");
    c.post("/token", r#"{"user_id":5}"#)
        .expect(400, "invalid_request");
    c.post("/token", r#"{"user":"x"}"#)
        .expect(400, "invalid_request");
    c.post("/token", "[1]").expect(400, "invalid_request");
    c.post("/token", "{").expect(400, "invalid_json");
    c.post("/token", "user_id=x").expect(400, "invalid_json");
    c.post("/token", " \r\n").expect(400, "invalid_json");
}

#[test]
fn unknown_routes_and_wrong_methods() {
    let srv = TestServer::start();
    let c = srv.client();
    for path in [
        "/nope",
        "/concerts/",
        "/concerts/1/2",
        "/token/",
        "/Token",
        "/openapi.yaml",
    ] {
        c.get(path).expect(404, "not_found");
    }
    // Request targets that are not paths (no client sends these for a GET).
    for target in ["*", "http://x/token"] {
        raw(srv.addr, "GET", target, &[]).expect(404, "not_found");
    }
    for (method, path, allow) in [
        ("DELETE", "/token", "GET, HEAD, POST"),
        ("PUT", "/token", "GET, HEAD, POST"),
        ("POST", "/concerts", "GET, HEAD"),
        ("POST", "/concerts/1", "GET, HEAD"),
        ("DELETE", "/concerts/1:1", "GET, HEAD"),
        ("GET", "/payments", "POST"),
        ("PATCH", "/points", "GET, HEAD, POST"),
        ("POST", "/healthz", "GET, HEAD"),
        ("POST", "/", "GET, HEAD"),
        ("BREW", "/metrics", "GET, HEAD"),
    ] {
        let r = c.send(method, path, &[], b"");
        r.expect(405, "method_not_allowed");
        assert_eq!(r.header("Allow"), Some(allow), "{method} {path}");
    }
    // HEAD is GET without the body.
    let mut conn = Conn::open(srv.addr);
    let s = conn.stream();
    std::io::Write::write_all(
        s,
        b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut raw = String::new();
    std::io::Read::read_to_string(conn.stream(), &mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.ends_with("\r\n\r\n"), "no body: {raw}");
}

#[test]
fn ids_in_paths() {
    let srv = TestServer::start();
    let u = srv.enter();
    for bad in [
        "/concerts/0",
        "/concerts/abc",
        "/concerts/-1",
        "/concerts/1.5",
        "/concerts/1:x",
        "/concerts/1:",
        "/concerts/:1",
        "/concerts/99999999999999999999",
    ] {
        u.get(bad).expect(400, "invalid_request");
    }
    u.get("/concerts/999").expect(404, "not_found");
    u.get("/concerts/1:999").expect(404, "not_found");
    u.get("/concerts/999:1").expect(404, "not_found");
    // Showtime 4 belongs to concert 2.
    u.get("/concerts/1:4").expect(404, "not_found");
    u.get("/concerts/2:4").expect(200, "");
    // An escaped colon is the same path.
    u.get("/concerts/2%3A4").expect(200, "");
    // A query string does not change the route.
    u.get("/concerts/2?x=1").expect(200, "");
}

#[test]
fn malformed_and_ill_typed_bodies() {
    let srv = TestServer::start();
    let u = srv.enter();
    let h = &u.http;
    for (path, body, code) in [
        ("/tickets", "{", "invalid_json"),
        ("/tickets", "", "invalid_json"),
        ("/tickets", "\u{1}\u{2}", "invalid_json"),
        (
            "/tickets",
            r#"{"showtime_id":1,"seat_id":1"#,
            "invalid_json",
        ),
        (
            "/tickets",
            r#"{"showtime_id":"1","seat_id":1}"#,
            "invalid_request",
        ),
        ("/tickets", r#"{"showtime_id":1}"#, "invalid_request"),
        (
            "/tickets",
            r#"{"showtime_id":1,"seat_id":0}"#,
            "invalid_request",
        ),
        (
            "/tickets",
            r#"{"showtime_id":-3,"seat_id":1}"#,
            "invalid_request",
        ),
        (
            "/tickets",
            r#"{"showtime_id":1,"seat_id":1,"seat":2}"#,
            "invalid_request",
        ),
        (
            "/tickets",
            r#"{"showtime_id":1,"seat_id":1,"user_id":7}"#,
            "invalid_request",
        ),
        ("/tickets", r#"[1,2]"#, "invalid_request"),
        ("/tickets", r#"null"#, "invalid_request"),
        ("/points", r#"{"amount":1.5}"#, "invalid_request"),
        ("/points", r#"{"amount":"100"}"#, "invalid_request"),
        (
            "/points",
            r#"{"amount":99999999999999999999}"#,
            "invalid_request",
        ),
        ("/points", r#"{}"#, "invalid_request"),
        ("/points", r#"{"amount":0}"#, "invalid_amount"),
        ("/points", r#"{"amount":-5}"#, "invalid_amount"),
        ("/points", r#"{"amount":10000001}"#, "invalid_amount"),
        ("/payments", r#"{"ticket_id":-1}"#, "invalid_request"),
        ("/payments", r#"{"ticket_id":true}"#, "invalid_request"),
        ("/payments", "{{}}", "invalid_json"),
    ] {
        let r = h.post(path, body);
        assert_eq!(r.status, 400, "POST {path} {body}: {}", r.text());
        assert_eq!(r.code(), code, "POST {path} {body}");
    }
    // Non-UTF-8 bytes.
    let r = h.send("POST", "/points", &[], &[0xff, 0xfe, b'{']);
    r.expect(400, "invalid_json");
    // Nesting beyond serde_json's limit is still a 400, not a crash.
    let deep = "[".repeat(10_000);
    h.post("/points", &deep).expect(400, "invalid_json");
}

#[test]
fn bodies_over_64_kib_are_refused() {
    let srv = TestServer::start();
    let u = srv.enter();
    let big = format!(r#"{{"amount": 1, "pad": "{}"}}"#, "x".repeat(200 * 1024));
    u.http
        .post("/points", &big)
        .expect(413, "payload_too_large");
    // On a GET route too, and without a token.
    srv.client()
        .send("GET", "/concerts", &[], big.as_bytes())
        .expect(413, "payload_too_large");
    // Chunked: the limit applies to what is read.
    let mut conn = Conn::open(srv.addr);
    let chunk = "y".repeat(8192);
    let mut req = format!(
        "POST /points HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        u.token
    );
    for _ in 0..25 {
        req.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    req.push_str("0\r\n\r\n");
    std::io::Write::write_all(conn.stream(), req.as_bytes()).unwrap();
    conn.read_response()
        .unwrap()
        .expect(413, "payload_too_large");
    // Just under the limit is read and parsed (a body tiny_http did not pre-read).
    let padded = format!("{}{}", " ".repeat(60 * 1024), r#"{"amount": 7}"#);
    u.http.post("/points", &padded).expect(200, "");
    // A chunked body under the limit is fine.
    let mut conn = Conn::open(srv.addr);
    let body = r#"{"amount": 3}"#;
    let req = format!(
        "POST /points HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        u.token,
        body.len()
    );
    std::io::Write::write_all(conn.stream(), req.as_bytes()).unwrap();
    let r = conn.read_response().unwrap();
    r.expect(200, "");
    assert_eq!(r.json()["balance"], 10);
    // Expect: 100-continue works. On a raw connection: tiny_http's `100 Continue` carries
    // headers (Date, Server), which HTTP allows but ureq refuses.
    let auth = format!("Bearer {}", u.token);
    let r = Conn::open(srv.addr).request(
        "POST",
        "/points",
        &[("Authorization", &auth), ("Expect", "100-continue")],
        br#"{"amount": 5}"#,
    );
    r.expect(200, "");
    assert_eq!(u.get("/points").json()["balance"], 15);
}

#[test]
fn an_absurd_content_length_does_not_take_the_server_down() {
    // tiny_http allocated the declared size to discard an unread body; 10^15 bytes would abort.
    // Now the request is answered and the connection closed (vendor/tiny_http/PATCHES.md).
    let srv = TestServer::start();
    let mut conn = Conn::open(srv.addr);
    std::io::Write::write_all(
        conn.stream(),
        b"POST /points HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\n{\"amount\":",
    )
    .unwrap();
    conn.read_response()
        .unwrap()
        .expect(413, "payload_too_large");
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(conn.stream(), &mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    srv.client().get("/healthz").expect(200, "");
}

#[apply(engines)]
fn forged_and_missing_tokens_are_401(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let u = srv.enter();
    let c = srv.client();
    let parts: Vec<&str> = u.token.split('.').collect();
    let b64 = |s: &str| base64url(s.as_bytes());
    let payload = String::from_utf8(base64url_decode(parts[1])).unwrap();
    let alg_none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    let hs512 = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS512","typ":"JWT"}"#),
        parts[1],
        parts[2]
    );
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&payload.replace(&u.id, "00000000-0000-4000-8000-000000000000")),
        parts[2]
    );
    let other_key = sign_hs256(parts[0], parts[1], b"not-the-server-secret");
    let bad_sig = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        &parts[2][..parts[2].len() - 4]
    );
    for path in [
        "/token",
        "/concerts",
        "/points",
        "/tickets",
        "/payment_history",
    ] {
        let r = c.get(path);
        r.expect(401, "unauthorized");
        assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
        for header in ["Basic abc", "Bearer", "Bearer    ", "abc"] {
            c.send("GET", path, &[("Authorization", header)], b"")
                .expect(401, "unauthorized");
        }
        for forged in [
            &alg_none,
            &hs512,
            &tampered,
            &other_key,
            &bad_sig,
            &"x.y.z".to_string(),
        ] {
            c.with_token(forged).get(path).expect(401, "unauthorized");
        }
    }
    // The genuine token works.
    u.get("/points").expect(200, "");
    // Past its lifetime (24 h), the token itself is rejected, whatever the queue says.
    srv.clock.advance(Duration::from_secs(24 * 3600 + 1));
    u.get("/points").expect(401, "unauthorized");
    u.get("/token").expect(401, "unauthorized");
}

#[apply(engines)]
fn guards_active_and_identity(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::start_on(backend, booking::Config::default().with_max_active(1));
    let first = srv.enter();
    let waiting = srv.enter();
    assert_eq!(waiting.entered["status"], "waiting");
    assert_eq!(waiting.entered["position"], 1);
    assert!(waiting.entered["estimated_wait_seconds"].as_i64().unwrap() > 0);
    for path in ["/concerts", "/concerts/1", "/concerts/1:1"] {
        waiting.get(path).expect(403, "queue_not_active");
        first.get(path).expect(200, "");
    }
    waiting.hold(1, 1).expect(403, "queue_not_active");
    // Identity routes serve a waiting user.
    for path in [
        "/token",
        "/points",
        "/point_history",
        "/tickets",
        "/payment_history",
    ] {
        waiting.get(path).expect(200, "");
    }
    waiting.charge(100).expect(200, "");
    // An active route checks the guard before the body.
    waiting
        .http
        .post("/tickets", "{")
        .expect(403, "queue_not_active");
    // ... and the token before anything.
    srv.client()
        .post("/tickets", "{")
        .expect(401, "unauthorized");
}

#[apply(engines)]
fn a_user_id_must_be_the_tokens(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let a = srv.enter();
    let b = srv.enter();
    a.post(
        "/tickets",
        json!({"showtime_id": 1, "seat_id": 1, "user_id": b.id}),
    )
    .expect(403, "forbidden");
    a.post("/points", json!({"amount": 10, "user_id": b.id}))
        .expect(403, "forbidden");
    a.post("/payments", json!({"ticket_id": 1, "user_id": b.id}))
        .expect(403, "forbidden");
    for path in [
        "/tickets",
        "/points",
        "/point_history",
        "/payment_history",
        "/token",
        "/concerts",
    ] {
        a.get(&format!("{path}?user_id={}", b.id))
            .expect(403, "forbidden");
        a.get(&format!("{path}?user_id={}", a.id)).expect(200, "");
        a.get(&format!("{path}?user_id=not-a-uuid"))
            .expect(400, "invalid_request");
    }
    // Upper-case is the same UUID.
    a.get(&format!("/tickets?user_id={}", a.id.to_uppercase()))
        .expect(200, "");
    a.post("/points", json!({"amount": 10, "user_id": a.id}))
        .expect(200, "");
    a.post(
        "/tickets",
        json!({"showtime_id": 1, "seat_id": 1, "user_id": a.id}),
    )
    .expect(201, "");
    // Nothing of b's changed.
    assert_eq!(b.get("/points").json()["balance"], 0);
}

#[apply(engines)]
fn another_users_ticket_is_not_found(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let a = srv.enter();
    let b = srv.enter();
    let t = a.hold(1, 1).json()["id"].as_i64().unwrap();
    b.charge(1_000_000).expect(200, "");
    b.pay(t).expect(404, "not_found");
    b.pay(424242).expect(404, "not_found");
    assert!(b.get("/tickets").json().as_array().unwrap().is_empty());
    assert_eq!(b.get("/points").json()["balance"], 1_000_000);
    // a can still pay for it.
    a.charge(1_000_000).expect(200, "");
    a.pay(t).expect(201, "");
}

#[apply(engines)]
fn domain_conflicts_over_http(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let mut cfg = booking::Config::default().with_max_tickets_per_user(2);
    cfg.max_balance = booking::Points::new(15_000_000);
    let srv = TestServer::start_on(backend, cfg);
    let a = srv.enter();
    let b = srv.enter();
    let t1 = a.hold(1, 1);
    t1.expect(201, "");
    let t1 = t1.json()["id"].as_i64().unwrap();
    b.hold(1, 1).expect(409, "seat_unavailable");
    a.hold(1, 1).expect(409, "seat_unavailable");
    a.hold(1, 2).expect(201, "");
    a.hold(1, 3).expect(409, "hold_limit_reached");
    a.hold(2, 51).expect(201, ""); // the limit is per showtime
    a.hold(1, 999).expect(404, "not_found");
    a.hold(1, 51).expect(404, "not_found"); // seat of another showtime
    a.hold(999, 1).expect(404, "not_found");
    a.pay(t1).expect(402, "insufficient_points");
    a.charge(10_000_000).expect(200, "");
    a.charge(10_000_000).expect(409, "balance_limit");
    a.pay(t1).expect(201, "");
    a.pay(t1).expect(409, "already_paid");
    // Showtimes close when they start: move past the last demo date.
    srv.clock.advance(Duration::from_secs(60 * 24 * 3600));
    let c = srv.enter();
    c.hold(1, 10).expect(409, "showtime_closed");
}

#[apply(engines)]
fn holds_lapse_on_time(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::start_on(
        backend,
        booking::Config::default().with_hold_ttl(Duration::from_secs(60)),
    );
    let a = srv.enter();
    let b = srv.enter();
    let t = a.hold(1, 7).json();
    let id = t["id"].as_i64().unwrap();
    a.charge(1_000_000).expect(200, "");
    assert_eq!(b.get("/concerts/1:1").json()[6]["status"], "held");
    srv.clock.advance(Duration::from_secs(61));
    assert_eq!(b.get("/concerts/1:1").json()[6]["status"], "available");
    assert_eq!(a.get("/tickets").json()[0]["status"], "expired");
    a.pay(id).expect(409, "hold_expired");
    b.hold(1, 7).expect(201, "");
    assert_eq!(a.get("/points").json()["balance"], 1_000_000);
}

#[apply(engines)]
fn idempotent_replays(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let u = srv.enter();
    let first = u.with_key("POST", "/points", "charge-1", json!({"amount": 500}));
    first.expect(200, "");
    let again = u.with_key("POST", "/points", "charge-1", json!({"amount": 500}));
    assert_eq!((again.status, again.json()), (200, first.json()));
    assert_eq!(u.get("/points").json()["balance"], 500);
    assert_eq!(u.get("/point_history").json().as_array().unwrap().len(), 1);
    u.with_key("POST", "/points", "charge-1", json!({"amount": 501}))
        .expect(422, "idempotency_key_reused");
    // Another user's key space is their own.
    let v = srv.enter();
    v.with_key("POST", "/points", "charge-1", json!({"amount": 9}))
        .expect(200, "");

    let t = u.hold(1, 20).json()["id"].as_i64().unwrap();
    u.charge(1_000_000).expect(200, "");
    let paid = u.with_key("POST", "/payments", "pay-1", json!({"ticket_id": t}));
    paid.expect(201, "");
    let replay = u.with_key("POST", "/payments", "pay-1", json!({"ticket_id": t}));
    assert_eq!((replay.status, replay.json()), (201, paid.json()));
    assert_eq!(
        u.get("/payment_history").json().as_array().unwrap().len(),
        1
    );
    u.with_key("POST", "/payments", "pay-1", json!({"ticket_id": t + 1}))
        .expect(422, "idempotency_key_reused");
    u.with_key("POST", "/payments", "pay-2", json!({"ticket_id": t}))
        .expect(409, "already_paid");
    // A failed request does not consume its key.
    u.with_key("POST", "/points", "fails-first", json!({"amount": 0}))
        .expect(400, "invalid_amount");
    u.with_key("POST", "/points", "fails-first", json!({"amount": 1}))
        .expect(200, "");
    // Keys: 1 to 255 visible ASCII characters.
    u.with_key("POST", "/points", &"k".repeat(256), json!({"amount": 1}))
        .expect(400, "invalid_request");
    u.with_key("POST", "/points", "", json!({"amount": 1}))
        .expect(400, "invalid_request");
    u.with_key("POST", "/points", &"k".repeat(255), json!({"amount": 1}))
        .expect(200, "");
}

#[apply(engines)]
fn a_locked_database_is_503_busy(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::start_on(
        backend,
        booking::Config::default().with_busy_timeout(Duration::from_millis(100)),
    );
    let u = srv.enter();
    // Another process holds what a write needs (SQLite: the write lock; PostgreSQL: the
    // tables, locked against writers).
    let lock = srv.db.raw();
    lock.lock_writes();
    u.charge(10).expect(503, "busy");
    lock.rollback();
    u.charge(10).expect(200, "");
}

#[test]
fn operations_endpoints_and_the_web_page() {
    let srv = TestServer::start();
    let c = srv.client();
    let h = c.get("/healthz");
    assert_eq!((h.status, h.json()), (200, json!({"status": "ok"})));
    assert_eq!(h.header("Content-Type"), Some("application/json"));
    let doc = c.get("/openapi.json");
    doc.expect(200, "");
    assert!(doc.json()["openapi"].as_str().unwrap().starts_with("3."));
    for (path, ty, needle) in [
        ("/", "text/html", "/openapi.json"),
        ("/app.js", "text/javascript", "/token"),
        ("/app.css", "text/css", "body"),
    ] {
        let r = c.get(path);
        r.expect(200, "");
        assert!(r.header("Content-Type").unwrap().starts_with(ty), "{path}");
        assert!(r.text().contains(needle), "{path}");
    }

    let u = srv.enter();
    u.hold(1, 1).expect(201, "");
    u.get("/nope").expect(404, "not_found");
    let m = c.get("/metrics");
    m.expect(200, "");
    assert!(m
        .header("Content-Type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let m = m.text();
    for needle in [
        "booking_http_requests_total{route=\"POST /tickets\",status=\"201\"} 1",
        "booking_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
        "booking_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"POST /tickets\"} 1",
        "booking_http_request_duration_seconds_count{route=\"POST /token\"} 1",
        "# TYPE booking_http_request_duration_seconds histogram",
        "booking_queue_active 1",
        "booking_queue_waiting 0",
        "booking_holds_live 1",
        "booking_payments_total 0",
        "booking_group_commit_batches_total ",
        "booking_group_commit_batches_by_size_total{size=\"1\"} ",
    ] {
        assert!(m.contains(needle), "missing {needle:?} in\n{m}");
    }
}

#[test]
fn a_panicking_handler_is_a_500_and_the_server_goes_on() {
    let srv = TestServer::start();
    let c = srv.client();
    for _ in 0..20 {
        let r = c.get("/__panic");
        r.expect(500, "internal");
        assert!(!r.text().contains("panic"), "{}", r.text());
    }
    c.get("/healthz").expect(200, "");
    assert!(c
        .get("/metrics")
        .text()
        .contains("booking_http_panics_total 20"));
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let srv = TestServer::start();
    let u = srv.enter();
    let mut conn = Conn::open(srv.addr);
    let auth = format!("Bearer {}", u.token);
    for i in 0..200 {
        let path = ["/token", "/concerts", "/concerts/1:1", "/nope"][i % 4];
        let r = conn.request("GET", path, &[("Authorization", &auth)], b"");
        assert_eq!(r.status, if path == "/nope" { 404 } else { 200 }, "{path}");
    }
    let r = conn.request(
        "POST",
        "/points",
        &[("Authorization", &auth)],
        br#"{"amount":1}"#,
    );
    r.expect(200, "");
}

#[test]
fn the_server_stops_when_asked() {
    let mut srv = TestServer::start();
    let addr = srv.addr;
    srv.client().get("/healthz").expect(200, "");
    let started = std::time::Instant::now();
    srv.stop();
    assert!(started.elapsed() < Duration::from_secs(2));
    // New connections may still be accepted by the kernel, but nobody answers them with data.
    let _ = addr;
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn base64url_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// An HS256 JWT over `header.payload` signed with `key`.
fn sign_hs256(header: &str, payload: &str, key: &[u8]) -> String {
    let msg = format!("{header}.{payload}");
    let key = jsonwebtoken::EncodingKey::from_secret(key);
    let sig =
        jsonwebtoken::crypto::sign(msg.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
    format!("{msg}.{sig}")
}
