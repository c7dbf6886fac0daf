//! What only group commit has: many request writes share one transaction, each in its own
//! savepoint, and nobody is answered before the commit. (Every rule, race and randomized test
//! runs on this path too: the `backends` template runs each on both write paths.)
// This file does not use the `backends` template (its tests pick their backend).
#[allow(unused_macros)]
mod fixture;

use booking::*;
use fixture::*;
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// Runs `n` threads that start together; returns their results in thread order.
fn together<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, f) = (barrier.clone(), f.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("thread panicked"))
        .collect()
}

fn stats(f: &Fixture) -> BatchStats {
    f.b.batch_stats().expect("group commit is on")
}

#[test]
fn the_path_under_test_is_the_batched_one() {
    let f = fixture(Backend::GroupCommit);
    let before = stats(&f).operations;
    let u = f.active_user();
    f.b.charge(&u, pts(10), None).unwrap();
    // The enter and the charge both went through the writer.
    assert!(stats(&f).operations >= before + 2);
    // And the direct backend has no writer at all.
    assert!(fixture(Backend::Direct).b.batch_stats().is_none());
}

#[test]
fn in_one_batch_failures_change_nothing_and_successes_all_land() {
    let f = Arc::new(fixture_with(Backend::GroupCommit, |c| {
        c.with_max_tickets_per_user(100)
    }));
    let rich = f.active_user();
    let poor = f.active_user();
    f.b.charge(&rich, pts(1_000_000), None).unwrap();
    let held: Vec<Ticket> = (0..5)
        .map(|i| f.b.hold(&rich, f.showtime, f.seats[i]).unwrap())
        .collect();
    let poor_ticket = f.b.hold(&poor, f.showtime, f.seats[5]).unwrap();
    let before = stats(&f);
    // Many writers at once: good payments, payments without points, invalid charges, double pays.
    let n = 40;
    let (g, tickets, pt) = (f.clone(), held.clone(), poor_ticket.clone());
    let results = together(n, move |i| {
        match i % 4 {
            0 => {
                g.b.pay(&rich, tickets[(i / 4) % 5].id, None)
                    .map(|_| "paid")
            }
            1 => g.b.pay(&poor, pt.id, None).map(|_| "paid"),
            2 => g.b.charge(&poor, pts(-1), None).map(|_| "charged"),
            _ => g.b.charge(&rich, pts(1), None).map(|_| "charged"),
        }
        .map_err(|e| e.code())
    });
    let after = stats(&f);
    let ops = after.operations - before.operations;
    let batches = after.batches - before.batches;
    assert_eq!(ops, n as u64, "every operation went through the writer");
    assert!(
        batches < ops,
        "some operations shared a commit: {batches} batches for {ops} operations"
    );
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
    let total: i64 = held.iter().map(|t| t.price.get()).sum();
    assert_eq!(
        f.b.balance(&rich).unwrap().balance,
        pts(1_000_000 - total + 10)
    );
    assert_eq!(f.b.balance(&poor).unwrap().balance, pts(0));
    assert!(f.b.point_history(&poor).unwrap().is_empty());
    assert_eq!(f.b.tickets(&poor).unwrap()[0].status, TicketStatus::Held);
    f.assert_verified();
}

#[test]
fn when_the_batch_cannot_commit_every_operation_of_it_fails_and_nothing_lands() {
    let f = fixture_with(Backend::GroupCommit, |c| {
        c.with_busy_timeout(Duration::from_millis(100))
    });
    let u = f.user();
    f.b.charge(&u, pts(100), None).unwrap();
    // Another process holds the write lock past the busy timeout: the batch cannot commit.
    let raw = f.raw();
    raw.lock_writes();
    let f = Arc::new(f);
    let before = stats(&f);
    let g = f.clone();
    let results = together(8, move |_| {
        g.b.charge(&u, pts(5), None).map_err(|e| e.code())
    });
    assert!(results.iter().all(|r| *r == Err("busy")), "{results:?}");
    let after = stats(&f);
    let (ops, batches) = (
        after.operations - before.operations,
        after.batches - before.batches,
    );
    assert_eq!(ops, 8);
    assert!(
        batches < ops,
        "the failed operations shared a commit: {batches} batches for {ops} operations"
    );
    raw.rollback();
    assert_eq!(f.b.balance(&u).unwrap().balance, pts(100));
    assert_eq!(f.b.point_history(&u).unwrap().len(), 1);
    f.b.charge(&u, pts(5), None).unwrap();
    assert_eq!(f.b.balance(&u).unwrap().balance, pts(105));
}
