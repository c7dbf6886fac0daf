//! Races with real threads: many hands on one seat, one wallet, one ticket — count the winners.
#[path = "fixture/mod.rs"]
mod fixture;
/// Request writes run one transaction each here; `tests/batched.rs` runs this file again through
/// the group-commit writer.
#[allow(dead_code)]
const GROUP_COMMIT: bool = false;

use booking::*;
use fixture::*;
use std::sync::{Arc, Barrier};
use std::thread;

/// Runs `n` threads that start together; returns their results in thread order.
fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, f) = (barrier.clone(), f.clone());
            thread::spawn(move || {
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

fn codes<T>(results: &[booking::Result<T>]) -> Vec<&'static str> {
    results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.code()))
        .collect()
}

#[test]
fn sixty_four_threads_holding_one_seat_make_exactly_one_holder() {
    let f = Arc::new(fixture());
    let users: Vec<UserId> = (0..64).map(|_| f.active_user().0).collect();
    let g = f.clone();
    let results = race(64, move |i| g.b.hold(users[i], g.showtime, g.seats[0]));
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        codes(&results).iter().all(|c| *c == "seat_unavailable"),
        "{:?}",
        codes(&results)
    );
    f.assert_verified();
}

#[test]
fn a_thousand_concurrent_charges_of_one_wallet_add_up_exactly() {
    let f = Arc::new(fixture());
    let u = UserId::new_random();
    let g = f.clone();
    let results = race(50, move |i| {
        (0..20)
            .map(|j| {
                g.b.charge(u, (i * 20 + j + 1) as i64, None)
                    .map(|b| b.balance)
            })
            .collect::<Vec<_>>()
    });
    let all: Vec<_> = results.into_iter().flatten().collect();
    assert_eq!(all.len(), 1000);
    assert!(all.iter().all(|r| r.is_ok()));
    let expected: i64 = (1..=1000).sum();
    assert_eq!(f.b.balance(u).unwrap().balance, expected);
    let history = f.b.point_history(u).unwrap();
    assert_eq!(history.len(), 1000);
    assert_eq!(history[0].balance_after, expected);
    f.assert_verified();
}

#[test]
fn thirty_two_threads_paying_one_ticket_make_one_payment_and_one_debit() {
    let f = Arc::new(fixture());
    let (u, _) = f.active_user();
    f.b.charge(u, 1_000_000, None).unwrap();
    let t = f.b.hold(u, f.showtime, f.seats[6]).unwrap();
    let g = f.clone();
    let results = race(32, move |_| g.b.pay(u, t.id, None));
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(codes(&results).iter().all(|c| *c == "already_paid"));
    assert_eq!(f.b.payment_history(u).unwrap().len(), 1);
    assert_eq!(f.b.balance(u).unwrap().balance, 1_000_000 - 7_000);
    f.assert_verified();
}

#[test]
fn concurrent_replays_of_one_idempotency_key_apply_once() {
    let f = Arc::new(fixture());
    let (u, _) = f.active_user();
    f.b.charge(u, 50_000, None).unwrap();
    let t = f.b.hold(u, f.showtime, f.seats[0]).unwrap();
    let g = f.clone();
    let results = race(16, move |i| {
        if i % 2 == 0 {
            g.b.charge(u, 777, Some("same-charge"))
                .map(|b| b.balance)
                .map(|_| ())
        } else {
            g.b.pay(u, t.id, Some("same-pay")).map(|_| ())
        }
    });
    assert!(results.iter().all(|r| r.is_ok()), "{:?}", codes(&results));
    assert_eq!(f.b.payment_history(u).unwrap().len(), 1);
    assert_eq!(f.b.balance(u).unwrap().balance, 50_000 + 777 - 1_000);
    f.assert_verified();
}

#[test]
fn payment_at_the_end_of_a_hold_never_coexists_with_a_new_hold() {
    for round in 0..40 {
        let f = Arc::new(fixture());
        let (a, _) = f.active_user();
        let (b, _) = f.active_user();
        f.b.charge(a, 100_000, None).unwrap();
        let t = f.b.hold(a, f.showtime, f.seats[0]).unwrap();
        // Half the rounds race at the very last millisecond of the hold, half exactly at its end.
        let at = if round % 2 == 0 {
            t.held_until - chrono::Duration::milliseconds(1)
        } else {
            t.held_until
        };
        f.clock.set(at);
        let g = f.clone();
        let results = race(2, move |i| {
            if i == 0 {
                g.b.pay(a, t.id, None).map(|_| ())
            } else {
                g.b.hold(b, g.showtime, g.seats[0]).map(|_| ())
            }
        });
        let (paid, held) = (results[0].is_ok(), results[1].is_ok());
        assert!(
            paid != held,
            "round {round}: paid={paid} held={held}: exactly one must win"
        );
        assert_eq!(
            paid,
            round % 2 == 0,
            "round {round}: the hold's end decides, not the race"
        );
        f.assert_verified();
    }
}

#[test]
fn two_handles_on_one_file_racing_one_seat_make_one_winner() {
    let f = fixture_with(test_config().with_durability(Durability::Full));
    let other = Arc::new(
        Booking::open_with_clock(f.b.path(), test_config(), Arc::new(f.clock.clone())).unwrap(),
    );
    let f = Arc::new(f);
    for seat in 0..5 {
        // Fresh users per seat: a user may hold only 4 seats of a showtime.
        let users: Vec<UserId> = (0..16).map(|_| f.active_user().0).collect();
        let (g, o, us) = (f.clone(), other.clone(), users);
        let results = race(16, move |i| {
            let handle = if i % 2 == 0 { &g.b } else { &*o };
            handle.hold(us[i], g.showtime, g.seats[seat])
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "seat {seat}"
        );
        let errors: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| format!("{}: {e}", e.code()))
            .collect();
        assert!(
            errors.iter().all(|e| e.starts_with("seat_unavailable")),
            "{errors:?}"
        );
    }
    f.assert_verified();
}

#[test]
fn many_threads_entering_at_once_each_get_one_entry_and_admission_respects_max_active() {
    let f = Arc::new(fixture_with(test_config().with_max_active(10)));
    let g = f.clone();
    let results = race(40, move |_| g.b.enter_queue(None).unwrap());
    let active = results
        .iter()
        .filter(|e| e.status.status == EntryStatus::Active)
        .count();
    assert_eq!(active, 10);
    let mut positions: Vec<i64> = results
        .iter()
        .filter(|e| e.status.status == EntryStatus::Waiting)
        .map(|e| e.status.position)
        .collect();
    positions.sort();
    assert_eq!(positions, (1..=30).collect::<Vec<_>>());
    // The same user entering from many threads at once still has one entry.
    let u = UserId::new_random();
    let g = f.clone();
    let again = race(16, move |_| g.b.enter_queue(Some(u)).unwrap());
    assert_eq!(again.iter().filter(|e| e.created).count(), 1);
    let entries: std::collections::HashSet<_> = again
        .iter()
        .map(|e| f.b.authorize(&e.token, Guard::Identity).unwrap().entry_id)
        .collect();
    assert_eq!(entries.len(), 1);
}
