//! Every library rule, race and randomized test again, with each request write (enter, poll,
//! hold, charge, pay) going through the group-commit writer: many operations share one
//! transaction, each in its own savepoint, and nobody is answered before the commit.
//!
//! Each included file is also a test binary of its own (one transaction per write); the shared
//! fixture reads `crate::GROUP_COMMIT` to pick the path (hence the fixture module loaded once
//! per included file).
#![allow(clippy::duplicate_mod)]

const GROUP_COMMIT: bool = true;

#[path = "holds.rs"]
mod holds;
#[path = "queue.rs"]
mod queue;
#[path = "races.rs"]
mod races;
#[path = "randomized.rs"]
mod randomized;
#[path = "wallet_payments.rs"]
mod wallet_payments;

#[path = "fixture/mod.rs"]
mod fixture;

use booking::*;
use fixture::*;
use std::sync::{Arc, Barrier};

#[test]
fn the_path_under_test_is_the_batched_one() {
    let f = fixture();
    let (u, _) = f.active_user();
    f.b.charge(u, 10, None).unwrap();
    let stats = f.b.batch_stats().expect("group commit is on");
    assert!(stats.operations.load(std::sync::atomic::Ordering::Relaxed) >= 2);
}

#[test]
fn in_one_batch_failures_change_nothing_and_successes_all_land() {
    let f = Arc::new(fixture_with(test_config().with_max_holds_per_user(100)));
    let (rich, _) = f.active_user();
    let (poor, _) = f.active_user();
    f.b.charge(rich, 1_000_000, None).unwrap();
    let held: Vec<Ticket> = (0..5)
        .map(|i| f.b.hold(rich, f.showtime, f.seats[i]).unwrap())
        .collect();
    let poor_ticket = f.b.hold(poor, f.showtime, f.seats[5]).unwrap();
    let before =
        f.b.batch_stats()
            .unwrap()
            .batches
            .load(std::sync::atomic::Ordering::Relaxed);
    // Many writers at once: good payments, payments without points, invalid charges, double pays.
    let n = 40;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier, held, pt) = (
                f.clone(),
                barrier.clone(),
                held.clone(),
                poor_ticket.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                match i % 4 {
                    0 => f.b.pay(rich, held[(i / 4) % 5].id, None).map(|_| "paid"),
                    1 => f.b.pay(poor, pt.id, None).map(|_| "paid"),
                    2 => f.b.charge(poor, -1, None).map(|_| "charged"),
                    _ => f.b.charge(rich, 1, None).map(|_| "charged"),
                }
                .map_err(|e| e.code())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let after =
        f.b.batch_stats()
            .unwrap()
            .batches
            .load(std::sync::atomic::Ordering::Relaxed);
    assert!(after - before < n as u64, "some operations shared a commit");
    let count = |r: Result<&str, &str>| results.iter().filter(|x| **x == r).count();
    assert_eq!(
        count(Ok("paid")),
        5,
        "each of the 5 held tickets paid exactly once"
    );
    assert_eq!(count(Err("already_paid")), 5);
    assert_eq!(count(Err("insufficient_points")), 10);
    assert_eq!(count(Err("invalid_amount")), 10);
    assert_eq!(count(Ok("charged")), 10);
    let total: i64 = held.iter().map(|t| t.price).sum();
    assert_eq!(f.b.balance(rich).unwrap().balance, 1_000_000 - total + 10);
    assert_eq!(f.b.balance(poor).unwrap().balance, 0);
    assert!(f.b.point_history(poor).unwrap().is_empty());
    assert_eq!(f.b.tickets(poor).unwrap()[0].status, TicketStatus::Held);
    f.assert_verified();
}

#[test]
fn when_the_batch_cannot_commit_every_operation_of_it_fails_and_nothing_lands() {
    let f = fixture_with(test_config().with_busy_timeout(std::time::Duration::from_millis(100)));
    let u = UserId::new_random();
    f.b.charge(u, 100, None).unwrap();
    // Another process holds the write lock past the busy timeout: the batch cannot commit.
    let raw = f.raw();
    raw.execute_batch("BEGIN IMMEDIATE").unwrap();
    let f = Arc::new(f);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let f = f.clone();
            std::thread::spawn(move || f.b.charge(u, 5, None).map_err(|e| e.code()))
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.iter().all(|r| *r == Err("busy")), "{results:?}");
    raw.execute_batch("ROLLBACK").unwrap();
    assert_eq!(f.b.balance(u).unwrap().balance, 100);
    assert_eq!(f.b.point_history(u).unwrap().len(), 1);
    f.b.charge(u, 5, None).unwrap();
    assert_eq!(f.b.balance(u).unwrap().balance, 105);
}
