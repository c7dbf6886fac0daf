//! The waiting room of a real sale over HTTP (docs/API.md §7): the prequeue, abuse limits
//! (`429 rate_limited` with `Retry-After`, `503 queue_full`, `X-Forwarded-For` only when
//! trusted), and live controls set through `booking-cli` taking effect on two server processes
//! within a second.
mod support;

use rstest_reuse::apply;

use booking::{Clock, Config, QueueChange};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{engines, Backend, Proc, TestDb, TestServer};

fn enter_from(srv: &TestServer, addr: Option<&str>) -> support::Resp {
    let headers: Vec<(&str, &str)> = addr.map(|a| ("X-Forwarded-For", a)).into_iter().collect();
    srv.client().send("POST", "/token", &headers, b"")
}

#[apply(engines)]
fn the_31st_entry_from_one_address_within_a_minute_is_rate_limited(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv =
        TestServer::start_with_options(backend, Config::default(), |o| booking::http::Options {
            enter_rate_per_ip: 30,
            trust_forwarded_for: true,
            ..o
        });
    let a = "198.51.100.7";
    for i in 0..30 {
        let r = enter_from(&srv, Some(a));
        assert_eq!(r.status, 201, "entry {i}: {}", r.text());
    }
    let r = enter_from(&srv, Some(a));
    r.expect(429, "rate_limited");
    let wait: u64 = r
        .header("Retry-After")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Another address is unaffected; the proxy's own entry (the last one) is what counts.
    enter_from(&srv, Some("198.51.100.8")).expect(201, "");
    enter_from(&srv, Some("10.9.9.9, 198.51.100.9")).expect(201, "");
    enter_from(&srv, Some(&format!("198.51.100.9, {a}"))).expect(429, "rate_limited");
    // Nothing was entered by the refused requests; the metrics count them.
    assert_eq!(srv.booking.operator().queue_counts().unwrap().active, 32);
    let m = srv.client().get("/metrics").text();
    assert!(
        m.lines().any(|l| l == "booking_http_rate_limited_total 2"),
        "{m}"
    );
    assert!(
        m.lines().any(|l| l == "booking_queue_admissions_total 32"),
        "{m}"
    );
    assert!(m.lines().any(|l| l == "booking_queue_paused 0"), "{m}");
}

#[apply(engines)]
fn forwarded_for_is_ignored_unless_trusted(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv =
        TestServer::start_with_options(backend, Config::default(), |o| booking::http::Options {
            enter_rate_per_ip: 5,
            ..o
        });
    // Every request comes from 127.0.0.1 whatever the header claims.
    for i in 0..5 {
        enter_from(&srv, Some(&format!("203.0.113.{i}"))).expect(201, "");
    }
    enter_from(&srv, Some("203.0.113.99")).expect(429, "rate_limited");
}

#[apply(engines)]
fn without_a_rate_there_is_no_limit(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    for _ in 0..100 {
        enter_from(&srv, None).expect(201, "");
    }
}

#[apply(engines)]
fn past_max_waiting_entering_is_503_queue_full(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::start_on(
        backend,
        Config::default().with_max_active(1).with_max_waiting(2),
    );
    let first = srv.enter(); // active
    srv.enter();
    srv.enter(); // two waiting
    srv.client().post("/token", "").expect(503, "queue_full");
    // A user already in line still gets their entry back.
    srv.client()
        .post_json("/token", json!({ "user_id": first.id }))
        .expect(200, "");
}

#[apply(engines)]
fn before_the_opening_entering_gives_a_prequeue_entry(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::on(backend);
    let opens = srv.clock.now() + chrono::Duration::minutes(10);
    srv.booking
        .operator()
        .change_queue(QueueChange {
            opens_at: Some(Some(opens)),
            ..QueueChange::default()
        })
        .unwrap();
    let r = srv.client().post("/token", "");
    r.expect(201, "");
    let v = r.json();
    assert_eq!(
        (v["status"].clone(), v["position"].clone()),
        (json!("prequeue"), json!(0))
    );
    let at: chrono::DateTime<chrono::Utc> = v["opens_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(at, opens);
    let who = srv.client().with_token(v["token"].as_str().unwrap());
    let s = who.get("/token").json();
    assert_eq!(s["status"], "prequeue");
    who.get("/concerts").expect(403, "queue_not_active");
    srv.clock.advance(Duration::from_secs(600));
    let s = who.get("/token").json();
    assert_eq!(
        (s["status"].clone(), s["opens_at"].clone()),
        (json!("active"), Value::Null)
    );
}

fn cli(db: &TestDb, args: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_booking-cli"))
        .arg("--db")
        .arg(db.arg())
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls `check` until it holds; returns how long that took (at most `limit`).
fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

#[apply(engines)]
fn live_controls_from_the_cli_reach_two_servers_within_a_second(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let db = TestDb::new(backend);
    let a = Proc::spawn(db.arg(), &["--max-active", "1"]);
    let b = Proc::spawn(db.arg(), &["--max-active", "1"]);
    let first = a.enter();
    assert_eq!(first.status()["status"], "active");
    let on_a = a.enter();
    let on_b = b.enter();
    assert_eq!(on_a.status()["status"], "waiting");
    assert_eq!(on_b.status()["status"], "waiting");
    // More room, set once in the database: both servers admit at once.
    let shown = cli(&db, &["queue", "set", "--max-active", "3"]);
    assert_eq!(shown["max_active"], 3);
    assert_eq!(shown["source"]["max_active"], "database");
    let took = within(Duration::from_secs(1), || {
        on_a.status()["status"] == "active" && on_b.status()["status"] == "active"
    });
    eprintln!("max-active applied on both servers after {took:?}");
    // Paused: nobody more is admitted by either server, and their polls say so.
    cli(&db, &["queue", "set", "--max-active", "10"]);
    cli(&db, &["queue", "pause"]);
    let later_a = a.enter();
    let later_b = b.enter();
    let s = later_b.status();
    assert_eq!(
        (s["status"].clone(), s["paused"].clone()),
        (json!("waiting"), json!(true))
    );
    assert_eq!(later_a.status()["status"], "waiting");
    let shown = cli(&db, &["queue", "show"]);
    assert_eq!(shown["paused"], true);
    cli(&db, &["queue", "resume"]);
    within(Duration::from_secs(1), || {
        later_a.status()["status"] == "active" && later_b.status()["status"] == "active"
    });
    // Back to each server's own flag.
    let shown = cli(&db, &["queue", "set", "--max-active", "flags"]);
    assert_eq!(shown["source"]["max_active"], "flags");
}
