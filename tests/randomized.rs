//! Thousands of random operation sequences from several threads against one database, with the
//! clock jumping around; afterwards every invariant must hold and the books must balance.
#[path = "fixture/mod.rs"]
mod fixture;
/// Request writes run one transaction each here; `tests/batched.rs` runs this file again through
/// the group-commit writer.
#[allow(dead_code)]
const GROUP_COMMIT: bool = false;

use booking::*;
use fixture::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const THREADS: usize = 4;
const OPS_PER_THREAD: usize = 900;
const USERS: usize = 24;

#[derive(Default)]
struct Tally {
    unkeyed_charges: i64,
    keyed_charges: HashMap<(UserId, String), i64>,
    payments: HashSet<PaymentId>,
    paid_amount: i64,
    ops: usize,
}

#[test]
fn random_concurrent_journeys_keep_every_invariant() {
    let f = Arc::new(fixture_with(
        test_config().with_max_active(8).with_max_holds_per_user(2),
    ));
    let users: Vec<UserId> = (0..USERS).map(|_| UserId::new_random()).collect();
    let tokens: Arc<Mutex<HashMap<UserId, String>>> = Arc::default();
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let seats: Vec<(ShowtimeId, SeatId)> = [f.showtime, f.other_showtime]
        .iter()
        .flat_map(|s| {
            f.b.list_seats(f.concert, *s)
                .unwrap()
                .into_iter()
                .map(move |seat| (*s, seat.id))
        })
        .collect();

    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (f, users, tokens, tally, seats) = (
                f.clone(),
                users.clone(),
                tokens.clone(),
                tally.clone(),
                seats.clone(),
            );
            thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(0xB00C + t as u64);
                let mut local = Tally::default();
                for _ in 0..OPS_PER_THREAD {
                    let u = users[rng.random_range(0..USERS)];
                    local.ops += 1;
                    match rng.random_range(0..100) {
                        0..=14 => {
                            let e = f.b.enter_queue(Some(u)).unwrap();
                            tokens.lock().unwrap().insert(u, e.token);
                        }
                        15..=29 => {
                            let token = tokens.lock().unwrap().get(&u).cloned();
                            if let Some(token) = token {
                                let p = f.b.authorize(&token, Guard::Identity).unwrap();
                                let s = f.b.queue_status(&p).unwrap();
                                assert!(s.status != EntryStatus::Waiting || s.position >= 1);
                            }
                        }
                        30..=54 => {
                            let token = tokens.lock().unwrap().get(&u).cloned();
                            let Some(token) = token else { continue };
                            match f.b.authorize(&token, Guard::Active) {
                                Ok(p) => {
                                    let (show, seat) = seats[rng.random_range(0..seats.len())];
                                    match f.b.hold(p.user_id, show, seat) {
                                        Ok(t) => assert_eq!(t.status, TicketStatus::Held),
                                        Err(e) => assert!(
                                            ["seat_unavailable", "hold_limit_reached"]
                                                .contains(&e.code()),
                                            "hold: {e}"
                                        ),
                                    }
                                }
                                Err(e) => assert_eq!(e.code(), "queue_not_active"),
                            }
                        }
                        55..=69 => {
                            let amount = match rng.random_range(0..10) {
                                0 => -5,
                                1 => 20_000_000,
                                _ => rng.random_range(1..20_000),
                            };
                            if rng.random_bool(0.5) {
                                let key = format!("k{}", rng.random_range(0..6));
                                match f.b.charge(u, amount, Some(&key)) {
                                    Ok(_) => {
                                        let prev =
                                            local.keyed_charges.insert((u, key.clone()), amount);
                                        assert!(prev.is_none() || prev == Some(amount));
                                    }
                                    Err(e) => assert!(
                                        [
                                            "invalid_amount",
                                            "idempotency_key_reused",
                                            "balance_limit"
                                        ]
                                        .contains(&e.code()),
                                        "charge: {e}"
                                    ),
                                }
                            } else {
                                match f.b.charge(u, amount, None) {
                                    Ok(_) => local.unkeyed_charges += amount,
                                    Err(e) => assert!(
                                        ["invalid_amount", "balance_limit"].contains(&e.code()),
                                        "{e}"
                                    ),
                                }
                            }
                        }
                        70..=84 => {
                            let tickets = f.b.tickets(u).unwrap();
                            if tickets.is_empty() {
                                continue;
                            }
                            let t = &tickets[rng.random_range(0..tickets.len())];
                            let key = rng.random_bool(0.3).then(|| format!("pay-{}", t.id));
                            match f.b.pay(u, t.id, key.as_deref()) {
                                Ok(p) => {
                                    assert_eq!(p.amount, t.price);
                                    if local.payments.insert(p.id) {
                                        local.paid_amount += p.amount;
                                    }
                                }
                                Err(e) => assert!(
                                    ["insufficient_points", "hold_expired", "already_paid"]
                                        .contains(&e.code()),
                                    "pay: {e}"
                                ),
                            }
                        }
                        85..=97 => f
                            .clock
                            .advance(Duration::from_millis(rng.random_range(0..20_000))),
                        98 => f
                            .clock
                            .advance(Duration::from_secs(rng.random_range(200..400))),
                        _ => {
                            f.b.sweep().unwrap();
                        }
                    }
                }
                let mut all = tally.lock().unwrap();
                all.ops += local.ops;
                all.unkeyed_charges += local.unkeyed_charges;
                for (k, v) in local.keyed_charges {
                    let prev = all.keyed_charges.insert(k, v);
                    assert!(prev.is_none() || prev == Some(v), "one key, one amount");
                }
                // A payment replayed by another thread has the same id: count it once.
                for p in local.payments {
                    all.payments.insert(p);
                }
                all.paid_amount += local.paid_amount;
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a worker panicked");
    }

    let tally = tally.lock().unwrap();
    assert_eq!(tally.ops, THREADS * OPS_PER_THREAD);
    f.assert_verified();
    let charged: i64 = tally.unkeyed_charges + tally.keyed_charges.values().sum::<i64>();
    let balances: i64 = users.iter().map(|u| f.b.balance(*u).unwrap().balance).sum();
    let payments: Vec<Payment> = users
        .iter()
        .flat_map(|u| f.b.payment_history(*u).unwrap())
        .collect();
    let paid: i64 = payments.iter().map(|p| p.amount).sum();
    assert_eq!(
        payments.len(),
        tally.payments.len(),
        "every successful payment, and only those"
    );
    assert_eq!(balances, charged - paid, "no point lost or invented");
    let sold = [f.showtime, f.other_showtime]
        .iter()
        .flat_map(|s| f.b.list_seats(f.concert, *s).unwrap())
        .filter(|s| s.status == SeatStatus::Sold)
        .count();
    assert_eq!(sold, payments.len(), "one sold seat per payment");
    assert!(!payments.is_empty(), "the run exercised payments");
    f.clock.advance(Duration::from_secs(3600));
    f.b.sweep().unwrap();
    f.assert_verified();
}
