//! Races over HTTP with real threads: one seat, one ticket, one wallet.

mod support;

use serde_json::json;
use std::sync::{Arc, Barrier};
use support::{TestServer, User};

/// Runs `f(i)` on `n` threads released together; returns their results in order.
fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("racer"))
        .collect()
}

#[test]
fn many_clients_holding_one_seat_make_one_winner() {
    let srv = TestServer::start();
    for seat in [1, 2, 3] {
        let users: Arc<Vec<User>> = Arc::new((0..16).map(|_| srv.enter()).collect());
        let u = users.clone();
        let results = race(16, move |i| {
            let r = u[i].hold(1, seat);
            let code = if r.status == 201 {
                String::new()
            } else {
                r.code()
            };
            (r.status, code)
        });
        let winners = results.iter().filter(|(s, _)| *s == 201).count();
        assert_eq!(winners, 1, "seat {seat}: {results:?}");
        assert!(results
            .iter()
            .all(|(s, c)| *s == 201 || (*s == 409 && c == "seat_unavailable")));
        let held: usize = users
            .iter()
            .map(|u| u.get("/tickets").json().as_array().unwrap().len())
            .sum();
        assert_eq!(held, 1);
    }
    assert!(srv.booking.verify().unwrap().ok);
}

#[test]
fn concurrent_payments_of_one_ticket_pay_once() {
    let srv = TestServer::start();
    for round in 0..3 {
        let u = srv.enter();
        let t = u.hold(1, 10 + round).json()["id"].as_i64().unwrap();
        u.charge(5_000_000).expect(200, "");
        let racer = u.clone();
        let results = race(8, move |_| {
            let r = racer.pay(t);
            let code = if r.status == 201 {
                String::new()
            } else {
                r.code()
            };
            (r.status, code)
        });
        assert_eq!(
            results.iter().filter(|(s, _)| *s == 201).count(),
            1,
            "{results:?}"
        );
        assert!(results
            .iter()
            .all(|(s, c)| *s == 201 || (*s == 409 && c == "already_paid")));
        let price = u.get("/tickets").json()[0]["price"].as_i64().unwrap();
        assert_eq!(u.get("/points").json()["balance"], 5_000_000 - price);
        assert_eq!(
            u.get("/payment_history").json().as_array().unwrap().len(),
            1
        );
    }
    assert!(srv.booking.verify().unwrap().ok);
}

#[test]
fn concurrent_charges_add_up_exactly() {
    let srv = TestServer::start();
    let u = srv.enter();
    let racer = u.clone();
    let statuses = race(8, move |i| {
        (0..10)
            .map(|j| racer.charge(((i * 10 + j) as i64) + 1).status)
            .collect::<Vec<_>>()
    });
    assert!(statuses.iter().flatten().all(|s| *s == 200), "{statuses:?}");
    let expected: i64 = (1..=80).sum();
    assert_eq!(u.get("/points").json()["balance"], expected);
    let ledger = u.get("/point_history").json();
    let ledger = ledger.as_array().unwrap();
    assert_eq!(ledger.len(), 80);
    assert_eq!(ledger[0]["balance_after"], expected);

    // The same key from many threads at once: charged once, the same answer for all.
    let racer = u.clone();
    let answers = race(8, move |_| {
        let r = racer.with_key("POST", "/points", "same-key", json!({"amount": 1000}));
        (r.status, r.json())
    });
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 200);
    assert_eq!(u.get("/points").json()["balance"], expected + 1000);
}
