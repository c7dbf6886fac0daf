//! The waiting room over HTTP: admission in order with a small max-active, positions, what a
//! payment frees, and entries that lapse.

mod support;

use rstest_reuse::apply;

use booking::Config;
use std::time::Duration;
use support::{engines, Backend, TestServer, User};

fn position(u: &User) -> (String, i64) {
    let s = u.status();
    (
        s["status"].as_str().unwrap().to_string(),
        s["position"].as_i64().unwrap(),
    )
}

#[apply(engines)]
fn admission_is_in_order_and_a_payment_admits_the_next_user(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let cfg = Config::default()
        .with_max_active(2)
        .with_active_ttl(Duration::from_secs(600))
        .with_idle_timeout(Duration::from_secs(3600));
    let srv = TestServer::start_on(backend, cfg);
    let users: Vec<User> = (0..6).map(|_| srv.enter()).collect();
    let states: Vec<(String, i64)> = users.iter().map(position).collect();
    assert_eq!(
        states,
        vec![
            ("active".into(), 0),
            ("active".into(), 0),
            ("waiting".into(), 1),
            ("waiting".into(), 2),
            ("waiting".into(), 3),
            ("waiting".into(), 4),
        ]
    );
    for u in &users[2..] {
        assert!(
            u.status()["expires_at"].is_string(),
            "a waiting entry says when it drops out"
        );
        u.get("/concerts").expect(403, "queue_not_active");
    }

    // users[0] buys a seat: its entry ends and the slot goes to the head of the line.
    let a = &users[0];
    let t = a.hold(1, 1).json()["id"].as_i64().unwrap();
    a.charge(1_000_000).expect(200, "");
    a.pay(t).expect(201, "");
    assert_eq!(position(a), ("expired".into(), 0));
    a.get("/concerts").expect(403, "queue_not_active");
    // The last in line polls first; the head is admitted all the same.
    assert_eq!(position(&users[5]), ("waiting".into(), 3));
    assert_eq!(position(&users[2]), ("active".into(), 0));
    assert_eq!(position(&users[3]), ("waiting".into(), 1));
    users[2].get("/concerts").expect(200, "");

    // users[1]'s session ends with its active TTL; the next in line follows.
    srv.clock.advance(Duration::from_secs(601));
    users[1].get("/concerts").expect(403, "queue_not_active");
    assert_eq!(position(&users[5]), ("waiting".into(), 1));
    assert_eq!(position(&users[3]), ("active".into(), 0));
    assert_eq!(position(&users[4]), ("active".into(), 0));
}

#[apply(engines)]
fn positions_never_grow_while_waiting(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let srv = TestServer::start_on(backend, Config::default().with_max_active(1));
    let _first = srv.enter();
    let waiting: Vec<User> = (0..5).map(|_| srv.enter()).collect();
    let mut last: Vec<i64> = waiting.iter().map(|u| position(u).1).collect();
    assert_eq!(last, vec![1, 2, 3, 4, 5]);
    for round in 0..3 {
        // People join behind, and re-entering returns the same place.
        let _late = srv.enter();
        let again = srv
            .client()
            .post_json("/token", serde_json::json!({"user_id": waiting[2].id}));
        again.expect(200, "");
        assert_eq!(again.json()["position"], last[2]);
        let now: Vec<i64> = waiting.iter().map(|u| position(u).1).collect();
        for (a, b) in last.iter().zip(&now) {
            assert!(b <= a, "round {round}: {last:?} -> {now:?}");
        }
        last = now;
    }
}

#[apply(engines)]
fn a_waiting_entry_that_stops_polling_drops_out(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let cfg = Config::default()
        .with_max_active(1)
        .with_idle_timeout(Duration::from_secs(60))
        .with_active_ttl(Duration::from_secs(30));
    let srv = TestServer::start_on(backend, cfg);
    let first = srv.enter();
    let quiet = srv.enter();
    let keen = srv.enter();
    assert_eq!(position(&keen), ("waiting".into(), 2));
    for _ in 0..4 {
        srv.clock.advance(Duration::from_secs(20));
        position(&keen); // keeps its entry alive
    }
    // first's session ended at 30 s; quiet stopped polling 80 s ago and dropped out.
    assert_eq!(position(&keen), ("active".into(), 0));
    assert_eq!(position(&quiet), ("expired".into(), 0));
    first.get("/concerts").expect(403, "queue_not_active");
    // A dropped-out user may enter again, at the back.
    let back = srv
        .client()
        .post_json("/token", serde_json::json!({"user_id": quiet.id}));
    back.expect(201, "");
    assert_eq!(back.json()["status"], "waiting");
}
